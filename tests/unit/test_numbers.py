from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcontrol.domain.numbers import (
    Normalised,
    destination_class,
    is_short_code,
    normalise_dialled,
    normalise_for_list,
)

LONDON = "+442079460000"  # Ofcom drama range, but valid to phonenumbers
MOBILE = "+447911123456"  # 07700 900xxx (drama range) is NOT valid to phonenumbers
PARIS = "+33142685300"


@pytest.mark.parametrize(
    "dialled",
    ["020 7946 0000", "02079460000", "+442079460000", "00442079460000", "(020) 7946-0000"],
)
def test_gb_formats_of_one_number_give_the_same_e164(dialled: str) -> None:
    result = normalise_dialled(dialled)
    assert result == Normalised(number=LONDON)
    assert result.ok


def test_dots_are_formatting() -> None:
    assert normalise_dialled("020.7946.0000").number == LONDON


def test_uk_mobile_and_international() -> None:
    assert normalise_dialled("07911 123456").number == MOBILE
    assert normalise_dialled("+33 1 42 68 53 00").number == PARIS
    assert normalise_dialled("0033 1 42 68 53 00").number == PARIS


def test_drama_mobile_range_is_not_valid() -> None:
    result = normalise_dialled("07700 900123")
    assert not result.ok
    assert result.number is None


@pytest.mark.parametrize(
    ("dialled", "problem"),
    [
        ("0207946000O", "contains letters"),
        ("020 7946 abcd", "contains letters"),
        ("*123#", "contains * or #"),
        ("0207946#0000", "contains * or #"),
        ("", "empty"),
        ("   ", "empty"),
        ("+", "empty"),
        ("0" * 21, "too long"),
        ("+" + "4" * 21, "too long"),
        ("12", "too short"),
        ("+1", "too short"),
        ("44+2079460000", "'+' is only allowed once, at the start"),
        ("++442079460000", "'+' is only allowed once, at the start"),
        ("020/7946/0000", "contains characters other than digits"),
        ("٠٢٠٧٩٤٦٠٠٠٠", "contains characters other than digits"),  # Arabic-Indic digits
    ],
)
def test_refused_with_a_problem(dialled: str, problem: str) -> None:
    result = normalise_dialled(dialled)
    assert result.number is None
    assert not result.ok
    assert not result.emergency
    assert result.problem == problem


def test_twenty_digits_is_not_too_long() -> None:
    # 20 digits passes cleaning (and is then refused as not a valid number, not "too long").
    assert normalise_dialled("0" * 20).problem != "too long"


def test_number_phonenumbers_calls_invalid_is_refused() -> None:
    result = normalise_dialled("01632 960000")  # drama range, not valid to phonenumbers
    assert result.number is None
    assert "not a valid number" in result.problem


def test_short_code_accepted_only_when_listed() -> None:
    refused = normalise_dialled("116 123")
    assert refused.number is None
    assert "short number" in refused.problem and "not listed" in refused.problem

    accepted = normalise_dialled("116 123", listed_short_codes={"116123"})
    assert accepted == Normalised(number="116123")


def test_listed_short_code_with_plus_is_not_the_short_code() -> None:
    assert normalise_dialled("+116123", listed_short_codes={"116123"}).number is None


@pytest.mark.parametrize("dialled", ["999", "112"])
def test_emergency_numbers(dialled: str) -> None:
    result = normalise_dialled(dialled)
    assert result == Normalised(number=dialled, emergency=True)
    assert result.ok


def test_emergency_needs_exact_match() -> None:
    assert not normalise_dialled("9991").emergency
    assert not normalise_dialled("+44999").emergency


def test_us_emergency_not_gb_emergency() -> None:
    assert normalise_dialled("911", region="US").emergency
    assert not normalise_dialled("911", region="GB").emergency


@given(st.text())
def test_normalise_dialled_never_raises(text: str) -> None:
    result = normalise_dialled(text)
    assert isinstance(result, Normalised)
    assert (result.number is None) == bool(result.problem)


@given(st.text(alphabet="0123456789+ -().*#", max_size=30))
def test_normalise_dialled_never_raises_on_dial_like_text(text: str) -> None:
    result = normalise_dialled(text, listed_short_codes={"116123"})
    assert (result.number is None) == bool(result.problem)
    if result.number is not None and not result.emergency and result.number != "116123":
        assert result.number.startswith("+")


def test_normalise_for_list_accepts_full_and_short_numbers() -> None:
    assert normalise_for_list("020 7946 0000") == Normalised(number=LONDON)
    assert normalise_for_list("116 123") == Normalised(number="116123")
    assert normalise_for_list("+33 1 42 68 53 00").number == PARIS


@pytest.mark.parametrize("number", ["999", "112"])
def test_normalise_for_list_refuses_emergency(number: str) -> None:
    result = normalise_for_list(number)
    assert result.number is None
    assert not result.emergency
    assert "emergency" in result.problem


@pytest.mark.parametrize("number", ["", "abc", "12", "07700 900123", "*99#"])
def test_normalise_for_list_refuses_junk(number: str) -> None:
    result = normalise_for_list(number)
    assert result.number is None
    assert result.problem


def test_is_short_code() -> None:
    assert is_short_code("116123")
    assert is_short_code("999")
    assert not is_short_code(LONDON)
    assert not is_short_code("")


@pytest.mark.parametrize(
    ("number", "cls"),
    [
        (LONDON, "uk_landline"),
        ("+442071838750", "uk_landline"),
        (MOBILE, "uk_mobile"),
        (PARIS, "international"),
        ("+14155552671", "international"),
        ("116123", "short"),
        ("+448001111", "other"),  # freephone (ChildLine)
        ("+447700900123", "other"),  # not a valid number
        ("garbage", "other"),
    ],
)
def test_destination_class(number: str, cls: str) -> None:
    assert destination_class(number, "GB") == cls


def test_destination_class_is_relative_to_the_region() -> None:
    assert destination_class(LONDON, "FR") == "international"
    assert destination_class(PARIS, "FR") == "uk_landline"
