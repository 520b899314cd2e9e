"""The balance enquiry's figures (domain/balance.py): what a prisoner hears after *100."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callcontrol.config import ConfigError, load_settings
from callcontrol.domain import balance as b
from callcontrol.domain.balance import BalanceFigures, balance_figures, enquiry_rate
from callcontrol.domain.limits import Caps, Usage
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    GlobalNumber,
    GlobalPolicy,
)
from callcontrol.domain.tariffs import DEFAULT_TARIFFS, Rounding, Tariff, tariffs_by_class
from callcontrol.domain.windows import parse_windows, seconds_left_in_windows_today

LONDON = ZoneInfo("Europe/London")
DAY = 24 * 3600
NONE_USED = Usage(0, 0, 0)
LANDLINE_RATE = 310  # 3.1p a minute
MOBILE_RATE = 688


def figures(
    available: int,
    *,
    usage: Usage = NONE_USED,
    caps: Caps | None = None,
    rate: int = LANDLINE_RATE,
    rounding: Rounding = Rounding.PER_SECOND,
    windows_left_s: int | None = None,
    day_left_s: int = DAY,
) -> BalanceFigures:
    return balance_figures(
        available_pence=available,
        usage=usage,
        caps=caps or Caps(),
        rate=rate,
        rounding=rounding,
        windows_left_s=windows_left_s,
        day_left_s=day_left_s,
    )


@pytest.mark.parametrize(
    ("pence", "negative", "pounds", "rest"),
    [
        (420, False, 4, 20),
        (0, False, 0, 0),
        (5, False, 0, 5),
        (100, False, 1, 0),
        (101, False, 1, 1),
        (-5, True, 0, 5),  # minus 5 pence, not "minus 1 pound 95"
        (-250, True, 2, 50),
        (5000, False, 50, 0),
    ],
)
def test_the_amount_in_pounds_and_pence_with_its_sign_apart(pence, negative, pounds, rest) -> None:
    f = figures(pence)
    assert (f.negative, f.pounds, f.pence) == (negative, pounds, rest)
    assert (-1 if f.negative else 1) * (f.pounds * 100 + f.pence) == pence


def test_the_daily_allowance_sets_the_minutes() -> None:
    # 420p at 3.1p/min buys 135 min; 30 min a day, 5 used: 25 minutes.
    f = figures(420, usage=Usage(1, 300, 300), caps=Caps(0, 30, 0))
    assert (f.minutes_left, f.limited_by) == (25, b.DAILY_MINUTES)
    assert f.describe() == (
        "available 420p; 25 min left today (limited by daily_minutes; rate 310 centipence/min)"
    )


def test_a_started_minute_of_the_allowance_is_not_promised() -> None:
    f = figures(420, usage=Usage(1, 301, 301), caps=Caps(0, 30, 0))  # 24 min 59 s left
    assert f.minutes_left == 24


def test_the_allowance_used_up_leaves_no_minutes_whatever_the_credit() -> None:
    f = figures(5000, usage=Usage(3, 1900, 1900), caps=Caps(0, 30, 0))  # 31 min 40 s used
    assert (f.minutes_left, f.limited_by) == (0, b.DAILY_MINUTES)
    assert (f.pounds, f.pence) == (50, 0)


def test_the_weekly_allowance_can_be_the_shorter() -> None:
    f = figures(420, usage=Usage(0, 0, 590 * 60), caps=Caps(0, 30, 600))
    assert (f.minutes_left, f.limited_by) == (10, b.WEEKLY_MINUTES)


def test_the_day_s_calls_cap_reached_leaves_no_minutes() -> None:
    f = figures(420, usage=Usage(3, 60, 60), caps=Caps(3, 30, 0))
    assert (f.minutes_left, f.limited_by) == (0, b.DAILY_CALLS)


def test_no_daily_limit_the_credit_sets_the_minutes() -> None:
    # 420p at 3.1p/min per second: 8129 s (charged 419.99 -> 420p), 135 whole minutes.
    f = figures(420)
    assert (f.minutes_left, f.limited_by) == (135, b.CREDIT)


def test_per_started_minute_the_credit_buys_whole_minutes() -> None:
    # 20p at 6.88p/min: 2 started minutes cost 13.76 -> 14p, 3 cost 20.64 -> 21p.
    f = figures(20, rate=MOBILE_RATE, rounding=Rounding.PER_STARTED_MINUTE)
    assert (f.minutes_left, f.limited_by) == (2, b.CREDIT)
    # Per second the same 20p buys 174 s: 2 whole minutes, never 3.
    assert figures(20, rate=MOBILE_RATE).minutes_left == 2


@pytest.mark.parametrize("pence", [0, 6, -1, -500])
def test_no_credit_for_a_minute_or_negative_leaves_no_minutes(pence: int) -> None:
    f = figures(pence, rate=MOBILE_RATE, caps=Caps(0, 30, 0))  # a minute costs 7p
    assert (f.minutes_left, f.limited_by) == (0, b.CREDIT)


def test_seven_pence_buys_the_first_minute_of_a_mobile_call() -> None:
    assert figures(7, rate=MOBILE_RATE).minutes_left == 1


def test_no_limit_at_all_is_bounded_by_the_day_s_end() -> None:
    f = figures(5000, rate=0, day_left_s=3 * 3600 + 59)
    assert (f.minutes_left, f.limited_by) == (180, b.DAY_END)


def test_the_calling_windows_left_today_bound_the_minutes() -> None:
    f = figures(5000, caps=Caps(0, 60, 0), windows_left_s=20 * 60 + 30)
    assert (f.minutes_left, f.limited_by) == (20, b.WINDOW)
    assert figures(5000, windows_left_s=0).minutes_left == 0


def test_a_tie_is_named_by_the_allowance_not_the_credit() -> None:
    # 93p at 3.1p/min buys exactly 30 min (1800 s cost 93p): the allowance is named.
    f = figures(93, caps=Caps(0, 30, 0))
    assert (f.minutes_left, f.limited_by) == (30, b.DAILY_MINUTES)


def test_time_to_the_day_s_end_cannot_be_negative() -> None:
    with pytest.raises(ValueError):
        figures(100, day_left_s=-1)


# --- the rate the credit's minutes are counted at -------------------------------------------

TARIFFS = tariffs_by_class(DEFAULT_TARIFFS)
WEEKDAY = datetime(2026, 12, 2, 12, 0, tzinfo=LONDON)  # a Wednesday


def contact(number: str, status: ContactStatus = ContactStatus.APPROVED, legal: bool = False):
    kind = ContactKind.LEGAL if legal else ContactKind.SOCIAL
    return Contact(number, kind, status)


def test_the_dearest_approved_charged_contact_sets_the_rate() -> None:
    contacts = [contact("+442079460000"), contact("+447911123456")]
    assert enquiry_rate(contacts, {}, TARIFFS, "GB", WEEKDAY) == MOBILE_RATE
    assert enquiry_rate(contacts[:1], {}, TARIFFS, "GB", WEEKDAY) == LANDLINE_RATE


def test_pending_blocked_legal_and_listed_numbers_do_not_count() -> None:
    contacts = [
        contact("+442079460000"),
        contact("+33142685300", ContactStatus.PENDING),  # international: dearer, not approved
        contact("+447911123456", ContactStatus.BLOCKED),
        contact("+447911000001", legal=True),  # free
        contact("+447911000002"),  # on the global list: free or blocked
    ]
    listed = {"+447911000002": GlobalNumber("+447911000002", GlobalPolicy.ALLOWED)}
    assert enquiry_rate(contacts, listed, TARIFFS, "GB", WEEKDAY) == LANDLINE_RATE


def test_without_a_charged_contact_the_catch_all_tariff_counts() -> None:
    assert enquiry_rate([], {}, TARIFFS, "GB", WEEKDAY) == 688  # "other": the mobile rate
    assert enquiry_rate([], {}, {}, "GB", WEEKDAY) == 0  # no tariffs at all: nothing to count


def test_the_weekend_rate_counts_at_the_weekend() -> None:
    tariffs = tariffs_by_class([Tariff("uk_landline", 310, weekend_rate=100), Tariff("other", 688)])
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=LONDON)
    assert enquiry_rate([contact("+442079460000")], {}, tariffs, "GB", saturday) == 100


# --- calling time left in today's windows ---------------------------------------------------


def at(hh: int, mm: int, day: int = 2, month: int = 12) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=LONDON)


def test_windows_left_today_add_up_the_rest_of_the_day() -> None:
    windows = parse_windows(["08:00-12:00", "18:00-20:00"])
    assert seconds_left_in_windows_today(windows, at(11, 30)) == (30 + 120) * 60
    assert seconds_left_in_windows_today(windows, at(13, 0)) == 120 * 60
    assert seconds_left_in_windows_today(windows, at(7, 0)) == (240 + 120) * 60
    assert seconds_left_in_windows_today(windows, at(20, 0)) == 0
    assert seconds_left_in_windows_today((), at(20, 0)) is None


def test_windows_left_today_count_real_time_across_a_clock_change() -> None:
    # 29 March 2026: the clocks go forward at 01:00 UTC; 00:00-03:00 local lasts two hours.
    windows = parse_windows(["00:00-03:00"])
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC).astimezone(LONDON)
    assert seconds_left_in_windows_today(windows, start) == 2 * 3600


# --- the setting ----------------------------------------------------------------------------


def test_the_code_is_star_100_by_default_and_can_be_turned_off() -> None:
    assert load_settings(env={}).site.balance_code == "*100"
    assert load_settings(env={"CALLCONTROL_SITE_BALANCE_CODE": ""}).site.balance_code == ""
    assert load_settings(env={"CALLCONTROL_SITE_BALANCE_CODE": "*2*3"}).site.balance_code == "*2*3"


@pytest.mark.parametrize("code", ["100", "0", "*", "*12345678", "*1#", "*1a", "#100"])
def test_a_code_that_could_hide_a_number_or_cannot_be_keyed_is_refused(code: str) -> None:
    with pytest.raises(ConfigError, match="balance_code"):
        load_settings(env={"CALLCONTROL_SITE_BALANCE_CODE": code})


def test_the_code_cannot_be_the_two_stage_number() -> None:
    env = {"CALLCONTROL_SITE_BALANCE_CODE": "*9", "CALLCONTROL_SITE_TWO_STAGE_NUMBER": "*9"}
    with pytest.raises(ConfigError, match="two_stage_number"):
        load_settings(env=env)
