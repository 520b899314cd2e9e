"""Two-stage dialling and the key that ends a number, in the cell-call conversation (issue 10):
a handset that dials the service number keys the PIN, then the number, and that number is
checked and decided as an en-bloc one would be."""

from __future__ import annotations

import pytest

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.domain.model import Reason
from tests.services.test_authorise import FakeChannel, FakeStore, world  # noqa: F401


def two_stage(handler: CellCallHandler, number: str = "0") -> CellCallHandler:
    return CellCallHandler(handler.auth, PinPrompting(tries=3, two_stage_number=number))


@pytest.mark.parametrize("service", ["0", "0#"])
async def test_the_number_keyed_after_the_pin_is_decided_and_stored(world, service) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", service, ["1234", "02079460000"])
    await two_stage(handler)(ch)
    assert ch.prompts == [cv.PROMPT_PIN, cv.PROMPT_NUMBER]
    assert ch.variables[cv.DECISION] == cv.ALLOW
    assert ch.variables[cv.NUMBER] == "+442079460000"
    [record] = store.records
    assert record.attempt.dialled == "02079460000"  # what was keyed, not the service number


@pytest.mark.parametrize(
    ("keyed", "problem"),
    [("", "no number keyed"), ("0207946A000", "keyed digits the dialplan would refuse")],
)
async def test_keyed_digits_that_are_no_number_are_refused_undecided(world, keyed, problem) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "0", ["1234", keyed])
    await two_stage(handler)(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    [record] = store.records
    assert (record.decision.reason, record.decision.detail) == (Reason.INVALID_NUMBER, problem)
    assert cv.NUMBER not in ch.variables


async def test_keyed_digits_go_through_the_same_decision(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "0", ["1234", "02079460999"])  # a number not on the list
    await two_stage(handler)(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    assert store.records[0].decision.reason is Reason.NOT_APPROVED


async def test_no_number_is_asked_without_the_right_pin(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "0", ["0000", "0000", "0000", "02079460000"])
    await two_stage(handler)(ch)
    assert cv.PROMPT_NUMBER not in ch.prompts
    assert store.records[0].decision.reason is Reason.WRONG_PIN


async def test_off_the_service_number_is_an_en_bloc_number(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "0", ["1234", "02079460000"])
    await two_stage(handler, "")(ch)
    assert ch.prompts == [cv.PROMPT_PIN]
    assert store.records[0].decision.reason is Reason.INVALID_NUMBER


async def test_a_trailing_hash_ends_an_en_bloc_number(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000#", ["1234"])
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.ALLOW
    assert ch.variables[cv.NUMBER] == "+442079460000"
    assert store.records[0].attempt.dialled == "02079460000#"  # stored as sent
