"""The rules of en-bloc and two-stage dialling (callcontrol.domain.dialling)."""

from __future__ import annotations

import pytest

from callcontrol.domain.dialling import is_two_stage, keyed_number_problem, without_end_key
from callcontrol.domain.numbers import normalise_dialled


def test_one_trailing_hash_is_dropped_and_only_one() -> None:
    assert without_end_key("02079460000#") == "02079460000"
    assert without_end_key("0207#") == "0207"
    assert without_end_key("##") == "#"
    assert without_end_key("0207*46") == "0207*46"


def test_an_en_bloc_number_ended_by_hash_is_the_number() -> None:
    assert normalise_dialled("02079460000#").number == "+442079460000"
    assert normalise_dialled("0207946#0000").problem == "contains * or #"
    assert normalise_dialled("#").problem == "empty"


@pytest.mark.parametrize(
    ("dialled", "service", "expected"),
    [("0", "0", True), ("0#", "0", True), ("00", "0", False), ("0", "", False), ("", "", False)],
)
def test_the_service_number_starts_two_stage_dialling(dialled, service, expected) -> None:
    assert is_two_stage(dialled, service) is expected


@pytest.mark.parametrize(
    ("keyed", "problem"),
    [
        ("02079460000", None),
        ("*21", None),
        ("", "no number keyed"),
        ("0207A", "keyed digits the dialplan would refuse"),
        ("1" * 33, "keyed digits the dialplan would refuse"),
    ],
)
def test_keyed_digits_are_held_to_the_dialplans_rule(keyed, problem) -> None:
    assert keyed_number_problem(keyed) == problem
