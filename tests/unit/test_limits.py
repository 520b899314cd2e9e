from __future__ import annotations

from typing import Any

import pytest

from callcontrol.domain.limits import CallLimit, Caps, Usage, call_limit
from callcontrol.domain.model import Decision, Outcome, Reason
from callcontrol.domain.tariffs import Rounding, charge_pence

NO_USAGE = Usage(calls_today=0, seconds_today=0, seconds_this_week=0)
RICH = 5000  # pence: the UK cap on a prisoner's account


def limit(**overrides: Any) -> CallLimit | Decision:
    args: dict[str, Any] = {
        "site_max_s": 1800,
        "prisoner_max_s": None,
        "contact_max_s": None,
        "usage": NO_USAGE,
        "caps": Caps(),
        "window_left_s": None,
        "available_pence": RICH,
        "rate": 688,
        "rounding": Rounding.PER_SECOND,
        "free": False,
    }
    args.update(overrides)
    return call_limit(**args)


def allowed(**overrides: Any) -> CallLimit:
    result = limit(**overrides)
    assert isinstance(result, CallLimit), result
    return result


def refused(reason: Reason, **overrides: Any) -> Decision:
    result = limit(**overrides)
    assert isinstance(result, Decision), result
    assert result.outcome is Outcome.REFUSE
    assert result.reason is reason
    assert result.detail
    return result


# -- strictest wins --------------------------------------------------------------------


def test_site_max_alone() -> None:
    result = allowed()
    assert result == CallLimit(1800, charge_pence(688, 1800, Rounding.PER_SECOND), "site_max")
    assert result.reserve_pence == 206  # 206.4p


@pytest.mark.parametrize(
    ("overrides", "seconds", "factor"),
    [
        ({"prisoner_max_s": 600}, 600, "prisoner"),
        ({"contact_max_s": 300}, 300, "contact"),
        (
            {"caps": Caps(max_minutes_per_day=60), "usage": Usage(1, 3500, 3500)},
            100,
            "daily_minutes",
        ),
        ({"caps": Caps(max_minutes_per_week=60), "usage": Usage(1, 0, 3590)}, 10, "weekly_minutes"),
        ({"window_left_s": 45}, 45, "window"),
        ({"available_pence": 10}, 91, "credit"),
    ],
)
def test_each_factor_can_be_the_strictest(
    overrides: dict[str, Any], seconds: int, factor: str
) -> None:
    everything_loose: dict[str, Any] = {
        "prisoner_max_s": 1200,
        "contact_max_s": 1200,
        "caps": Caps(max_calls_per_day=10, max_minutes_per_day=600, max_minutes_per_week=6000),
        "window_left_s": 1200,
    }
    result = allowed(**(everything_loose | overrides))
    assert result.seconds == seconds
    assert result.limited_by == factor
    assert result.reserve_pence == charge_pence(688, seconds, Rounding.PER_SECOND)


def test_all_factors_at_once_the_smallest_wins() -> None:
    result = allowed(
        prisoner_max_s=900,
        contact_max_s=800,
        caps=Caps(max_minutes_per_day=30, max_minutes_per_week=100),
        usage=Usage(calls_today=2, seconds_today=1200, seconds_this_week=5700),  # 600, 300
        window_left_s=400,
        available_pence=RICH,
    )
    assert (result.seconds, result.limited_by) == (300, "weekly_minutes")


def test_ties_name_the_first_in_order() -> None:
    assert allowed(prisoner_max_s=1800).limited_by == "site_max"
    assert allowed(prisoner_max_s=600, contact_max_s=600).limited_by == "prisoner"
    assert allowed(contact_max_s=600, window_left_s=600).limited_by == "contact"
    # 600 s at 688 per second is 68.8p -> 69p: with exactly 69p the balance ties.
    assert allowed(window_left_s=600, available_pence=69).limited_by == "window"
    assert allowed(window_left_s=600, available_pence=68).limited_by == "credit"


def test_zero_own_limits_mean_none() -> None:
    assert allowed(prisoner_max_s=0, contact_max_s=0).limited_by == "site_max"


# -- the 90-second example -------------------------------------------------------------


def test_ten_pence_at_the_mobile_rate_buys_91_seconds() -> None:
    result = allowed(available_pence=10, rate=688, rounding=Rounding.PER_SECOND)
    assert result == CallLimit(seconds=91, reserve_pence=10, limited_by="credit")
    assert charge_pence(688, 91, Rounding.PER_SECOND) == 10  # 10.43p
    assert charge_pence(688, 92, Rounding.PER_SECOND) == 11  # 10.55p


def test_per_started_minute_credit_buys_whole_minutes() -> None:
    result = allowed(available_pence=20, rate=688, rounding=Rounding.PER_STARTED_MINUTE)
    # 2 minutes = 13.76p -> 14p; 3 minutes = 20.64p -> 21p.
    assert result == CallLimit(seconds=120, reserve_pence=14, limited_by="credit")


# -- refusals --------------------------------------------------------------------------


def test_outside_hours() -> None:
    refused(Reason.OUTSIDE_HOURS, window_left_s=0)


def test_daily_calls_cap() -> None:
    caps = Caps(max_calls_per_day=3)
    decision = refused(Reason.DAILY_CALLS_CAP, caps=caps, usage=Usage(3, 0, 0))
    assert "3" in decision.detail
    assert allowed(caps=caps, usage=Usage(2, 0, 0)).limited_by == "site_max"


def test_daily_minutes_cap() -> None:
    caps = Caps(max_minutes_per_day=30)
    refused(Reason.DAILY_MINUTES_CAP, caps=caps, usage=Usage(2, 1800, 1800))
    refused(Reason.DAILY_MINUTES_CAP, caps=caps, usage=Usage(2, 1900, 1900))  # overran
    assert allowed(caps=caps, usage=Usage(2, 1799, 1799)).seconds == 1


def test_weekly_minutes_cap() -> None:
    caps = Caps(max_minutes_per_week=120)
    refused(Reason.WEEKLY_MINUTES_CAP, caps=caps, usage=Usage(0, 0, 7200))
    assert allowed(caps=caps, usage=Usage(0, 0, 7000)).seconds == 200


def test_insufficient_credit() -> None:
    # The first minute at 6.88p costs 7p.
    decision = refused(Reason.INSUFFICIENT_CREDIT, available_pence=6)
    assert "6p" in decision.detail and "7p" in decision.detail and "688" in decision.detail
    refused(Reason.INSUFFICIENT_CREDIT, available_pence=0)
    refused(Reason.INSUFFICIENT_CREDIT, available_pence=-5)
    refused(Reason.INSUFFICIENT_CREDIT, available_pence=-1, rate=0)
    assert allowed(available_pence=7).seconds == 65  # 65 s cost 7.45p -> 7p, 66 s 7.57p -> 8p
    assert allowed(available_pence=0, rate=0).limited_by == "site_max"


def test_refusal_order() -> None:
    everything_wrong: dict[str, Any] = {
        "window_left_s": 0,
        "caps": Caps(max_calls_per_day=1, max_minutes_per_day=1, max_minutes_per_week=1),
        "usage": Usage(5, 600, 600),
        "available_pence": 0,
    }
    refused(Reason.OUTSIDE_HOURS, **everything_wrong)
    refused(Reason.DAILY_CALLS_CAP, **(everything_wrong | {"window_left_s": 30}))
    fewer_calls = everything_wrong | {"window_left_s": 30, "usage": Usage(0, 600, 600)}
    refused(Reason.DAILY_MINUTES_CAP, **fewer_calls)
    refused(Reason.WEEKLY_MINUTES_CAP, **(fewer_calls | {"usage": Usage(0, 0, 600)}))
    refused(Reason.INSUFFICIENT_CREDIT, **(fewer_calls | {"usage": Usage(0, 0, 0)}))


def test_a_short_call_is_fine_when_the_first_minute_is_covered() -> None:
    result = allowed(window_left_s=30, available_pence=7)
    assert result == CallLimit(seconds=30, reserve_pence=3, limited_by="window")  # 3.44p


# -- free calls ------------------------------------------------------------------------


def test_free_calls_need_no_credit_and_reserve_nothing() -> None:
    result = allowed(free=True, available_pence=0)
    assert result == CallLimit(seconds=1800, reserve_pence=0, limited_by="site_max")
    result = allowed(free=True, available_pence=-100, window_left_s=120)
    assert result == CallLimit(seconds=120, reserve_pence=0, limited_by="window")


def test_free_calls_still_keep_to_caps_and_windows() -> None:
    refused(Reason.OUTSIDE_HOURS, free=True, window_left_s=0)
    refused(Reason.DAILY_CALLS_CAP, free=True, caps=Caps(max_calls_per_day=1), usage=Usage(1, 0, 0))
    # The caller exempts a kind of call by passing no caps and no window.
    assert allowed(free=True, caps=Caps(), usage=Usage(1, 0, 0)).limited_by == "site_max"


# -- bad input -------------------------------------------------------------------------


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        limit(site_max_s=0)
    with pytest.raises(ValueError):
        limit(window_left_s=-1)
    with pytest.raises(ValueError):
        limit(prisoner_max_s=-1)
    with pytest.raises(ValueError):
        Usage(-1, 0, 0)
    with pytest.raises(ValueError):
        limit(caps=Caps(max_calls_per_day=None, max_minutes_per_day=-5))


def test_none_caps_mean_no_cap() -> None:
    caps = Caps(max_calls_per_day=None, max_minutes_per_day=None, max_minutes_per_week=None)
    assert allowed(caps=caps, usage=Usage(99, 99_999, 99_999)).limited_by == "site_max"
