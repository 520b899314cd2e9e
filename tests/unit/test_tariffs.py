from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcontrol.domain.tariffs import (
    DEFAULT_TARIFFS,
    Rounding,
    Tariff,
    affordable_seconds,
    charge_pence,
    one_minute_pence,
    rate_for,
    tariffs_by_class,
)

LONDON = ZoneInfo("Europe/London")
FRIDAY = datetime(2026, 5, 1, 12, 0, tzinfo=LONDON)
SATURDAY = datetime(2026, 5, 2, 12, 0, tzinfo=LONDON)
SUNDAY = datetime(2026, 5, 3, 23, 59, tzinfo=LONDON)
MONDAY = datetime(2026, 5, 4, 0, 0, tzinfo=LONDON)

PS = Rounding.PER_SECOND
PM = Rounding.PER_STARTED_MINUTE

rates = st.integers(min_value=0, max_value=100_000)
seconds = st.integers(min_value=0, max_value=36_000)
roundings = st.sampled_from(list(Rounding))


# -- the worked examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "talk", "rounding", "pence"),
    [
        (688, 10, PS, 1),  # 1.1467p -> 1p
        (688, 10, PM, 7),  # 6.88p -> 7p
        (310, 10, PS, 1),  # 0.5167p -> 1p
        (310, 10, PM, 3),  # 3.1p -> 3p
        (688, 90, PS, 10),  # 10.32p -> 10p
        (310, 61, PM, 6),  # two started minutes, 6.2p -> 6p
        (688, 91, PS, 10),  # 10.435p -> 10p
        (688, 92, PS, 11),  # 10.549p -> 11p
        (310, 60, PS, 3),
        (310, 60, PM, 3),
        (688, 60, PM, 7),
        (688, 61, PM, 14),  # 13.76p -> 14p
    ],
)
def test_worked_examples(rate: int, talk: int, rounding: Rounding, pence: int) -> None:
    assert charge_pence(rate, talk, rounding) == pence


def test_halves_round_up() -> None:
    # 150 centipence per minute for 60 s is exactly 1.5p.
    assert charge_pence(150, 60, PS) == 2
    assert charge_pence(150, 1, PM) == 2
    # Exactly 0.5p per second: 3000 centipence per minute for 1 s.
    assert charge_pence(3000, 1, PS) == 1
    assert charge_pence(2999, 1, PS) == 0


def test_zero_seconds_cost_nothing() -> None:
    assert charge_pence(688, 0, PS) == 0
    assert charge_pence(688, 0, PM) == 0


def test_rounding_accepts_the_settings_text() -> None:
    assert charge_pence(688, 10, "per_started_minute") == 7  # type: ignore[arg-type]


def test_negative_values_are_refused() -> None:
    with pytest.raises(ValueError):
        charge_pence(688, -1, PS)
    with pytest.raises(ValueError):
        charge_pence(-1, 10, PS)
    with pytest.raises(ValueError):
        affordable_seconds(100, 688, PS, -1)
    with pytest.raises(ValueError):
        Tariff("uk_landline", -1)
    with pytest.raises(ValueError):
        Tariff("uk_landline", 310, weekend_rate=-1)


def test_one_minute() -> None:
    assert one_minute_pence(688, PS) == 7
    assert one_minute_pence(310, PM) == 3
    assert one_minute_pence(0, PS) == 0


# -- affordable seconds ----------------------------------------------------------------


def test_affordable_ten_pence_at_mobile_rate() -> None:
    assert affordable_seconds(10, 688, PS, 1800) == 91
    assert charge_pence(688, 91, PS) == 10
    assert charge_pence(688, 92, PS) == 11


def test_affordable_per_started_minute_is_whole_minutes() -> None:
    # 7p buys one started minute at 6.88p; 13p does not buy a second (13.76p -> 14p).
    assert affordable_seconds(7, 688, PM, 1800) == 60
    assert affordable_seconds(13, 688, PM, 1800) == 60
    assert affordable_seconds(14, 688, PM, 1800) == 120
    assert affordable_seconds(6, 688, PM, 1800) == 0


def test_affordable_edges() -> None:
    assert affordable_seconds(0, 0, PS, 1800) == 1800  # free rate
    assert affordable_seconds(5000, 310, PS, 1800) == 1800  # capped
    assert affordable_seconds(0, 688, PS, 1800) == 4  # 688*4/6000 = 0.46p -> 0p
    assert affordable_seconds(-1, 688, PS, 1800) == 0
    assert affordable_seconds(-1, 0, PS, 1800) == 0
    assert affordable_seconds(100, 688, PS, 0) == 0


# -- properties ------------------------------------------------------------------------


@given(rate=rates, talk=seconds, rounding=roundings)
def test_charge_is_never_negative_and_never_falls(rate: int, talk: int, rounding: Rounding) -> None:
    now = charge_pence(rate, talk, rounding)
    assert now >= 0
    assert charge_pence(rate, talk + 1, rounding) >= now


@given(
    available=st.integers(min_value=-10, max_value=10_000),
    rate=rates,
    rounding=roundings,
    cap=st.integers(min_value=0, max_value=36_000),
)
def test_affordable_is_the_most_that_is_affordable(
    available: int, rate: int, rounding: Rounding, cap: int
) -> None:
    s = affordable_seconds(available, rate, rounding, cap)
    assert 0 <= s <= cap
    if available < 0:
        assert s == 0
        return
    assert charge_pence(rate, s, rounding) <= available
    if s < cap:
        assert charge_pence(rate, s + 1, rounding) > available


@given(rate=rates, talk=seconds, rounding=roundings)
def test_affordable_round_trips_a_charge(rate: int, talk: int, rounding: Rounding) -> None:
    # Whatever talk time cost, that much money buys at least that talk time.
    assert affordable_seconds(charge_pence(rate, talk, rounding), rate, rounding, talk) == talk


# -- tariffs and rates -----------------------------------------------------------------


def test_default_tariffs() -> None:
    tariffs = tariffs_by_class(DEFAULT_TARIFFS)
    assert set(tariffs) == {"uk_landline", "uk_mobile", "international", "short", "other"}
    assert rate_for(tariffs, "uk_landline", FRIDAY) == 310
    assert rate_for(tariffs, "uk_mobile", FRIDAY) == 688
    assert rate_for(tariffs, "international", FRIDAY) == 2500
    assert rate_for(tariffs, "short", FRIDAY) == 0
    assert rate_for(tariffs, "other", FRIDAY) == 688
    assert rate_for(tariffs, "uk_landline", SATURDAY) == 310  # no weekend rate: the same


def test_weekend_rate_is_by_local_day() -> None:
    tariffs = tariffs_by_class([Tariff("uk_landline", 310, weekend_rate=200), Tariff("other", 1)])
    assert rate_for(tariffs, "uk_landline", FRIDAY) == 310
    assert rate_for(tariffs, "uk_landline", SATURDAY) == 200
    assert rate_for(tariffs, "uk_landline", SUNDAY) == 200
    assert rate_for(tariffs, "uk_landline", MONDAY) == 310
    # Sunday 23:30 in London (BST) is still Sunday, though it is Sunday 22:30 in UTC and
    # Monday 07:30 in Tokyo: the caller passes local time, and the local day decides.
    sunday_late = datetime(2026, 5, 3, 22, 30, tzinfo=UTC).astimezone(LONDON)
    assert rate_for(tariffs, "uk_landline", sunday_late) == 200
    monday_early = datetime(2026, 5, 3, 23, 30, tzinfo=UTC).astimezone(LONDON)
    assert rate_for(tariffs, "uk_landline", monday_early) == 310


def test_unknown_class_takes_other() -> None:
    tariffs = tariffs_by_class(DEFAULT_TARIFFS)
    assert rate_for(tariffs, "satellite", FRIDAY) == 688


def test_no_other_tariff_is_a_key_error() -> None:
    tariffs = tariffs_by_class([Tariff("uk_landline", 310)])
    with pytest.raises(KeyError):
        rate_for(tariffs, "uk_mobile", FRIDAY)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        rate_for(tariffs_by_class(DEFAULT_TARIFFS), "uk_landline", datetime(2026, 5, 1, 12))


def test_duplicate_class_is_refused() -> None:
    with pytest.raises(ValueError, match="uk_landline"):
        tariffs_by_class([Tariff("uk_landline", 310), Tariff("uk_landline", 300)])
