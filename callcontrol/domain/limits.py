"""How long may this call last, and what must be reserved for it?

One plain function, ``call_limit``, of values the service layer has gathered: the
prisoner's usage so far (counted from the database), the caps, the time left in the
calling window, the balance and the rate. It refuses the call or returns its time limit
and the credit to reserve.
"""

from __future__ import annotations

from dataclasses import dataclass

from callcontrol.domain.model import Decision, Reason
from callcontrol.domain.tariffs import (
    Rounding,
    affordable_seconds,
    charge_pence,
    one_minute_pence,
)

SITE_MAX = "site_max"
PRISONER = "prisoner"
CONTACT = "contact"
DAILY_MINUTES = "daily_minutes"
WEEKLY_MINUTES = "weekly_minutes"
WINDOW = "window"
CREDIT = "credit"


@dataclass(frozen=True)
class Usage:
    """What the prisoner has already used, counted by the caller from the database."""

    calls_today: int
    seconds_today: int
    seconds_this_week: int

    def __post_init__(self) -> None:
        if min(self.calls_today, self.seconds_today, self.seconds_this_week) < 0:
            raise ValueError(f"usage cannot be negative: {self}")


@dataclass(frozen=True)
class Caps:
    """Per-prisoner caps for a local day and a local week. 0 or None: no cap."""

    max_calls_per_day: int | None = 0
    max_minutes_per_day: int | None = 0
    max_minutes_per_week: int | None = 0


@dataclass(frozen=True)
class CallLimit:
    """A call may go ahead, for at most ``seconds``, with ``reserve_pence`` reserved."""

    seconds: int  # the time limit for the bridge
    reserve_pence: int  # charge_pence(rate, seconds, rounding); 0 for a free call
    # What set ``seconds``: site_max | prisoner | contact | daily_minutes | weekly_minutes |
    # window | credit.
    limited_by: str


def _cap(value: int | None) -> int | None:
    """A cap or own limit as a positive number, or None for "no cap" (0 or None)."""
    if value is None or value == 0:
        return None
    if value < 0:
        raise ValueError(f"a cap or limit cannot be negative: {value}")
    return value


def _minutes_left(cap_minutes: int | None, used_seconds: int) -> int | None:
    cap = _cap(cap_minutes)
    return None if cap is None else cap * 60 - used_seconds


def call_limit(
    *,
    site_max_s: int,
    prisoner_max_s: int | None,
    contact_max_s: int | None,
    usage: Usage,
    caps: Caps,
    window_left_s: int | None,
    available_pence: int,
    rate: int,
    rounding: Rounding,
    free: bool,
) -> CallLimit | Decision:
    """The time limit and reservation for a call, or the refusal.

    Refusals, in this order (the first that applies is given):

    1. ``window_left_s == 0`` (outside every calling window): OUTSIDE_HOURS.
       ``window_left_s`` None means no windows, calls at any time.
    2. ``calls_today`` has reached ``max_calls_per_day``: DAILY_CALLS_CAP.
    3. no seconds left of ``max_minutes_per_day``: DAILY_MINUTES_CAP.
    4. no seconds left of ``max_minutes_per_week``: WEEKLY_MINUTES_CAP.
    5. a charged call whose balance does not cover the first minute
       (``one_minute_pence``): INSUFFICIENT_CREDIT.

    Otherwise the limit is the shortest of: the site's longest call, the prisoner's and
    the contact's own limits (None or 0: none), the minutes left today and this week, the
    time left in the window, and (for a charged call) the longest the balance pays for.
    ``limited_by`` names what set it; on a tie, the first in that order is named, so
    "credit" only when the balance is strictly the shortest.

    A call shorter than a minute is allowed when the balance covers the first minute and
    another limit is short (the window closes in 30 s, say): it gets that short limit.
    The credit check needs only the first minute because the limit itself stops the call
    when the money runs out.

    ``free`` (privileged numbers, globally allowed free numbers): no credit check and
    nothing reserved. The caps and windows still apply; a caller that wants a kind of
    call exempt from them passes ``Caps()`` and ``window_left_s=None`` for it.
    """
    if site_max_s <= 0:
        raise ValueError(f"the site's longest call must be positive, not {site_max_s} s")
    if window_left_s is not None and window_left_s < 0:
        raise ValueError(f"time left in the window cannot be negative: {window_left_s} s")

    if window_left_s == 0:
        return Decision.refuse(Reason.OUTSIDE_HOURS, detail="outside the calling windows")
    max_calls = _cap(caps.max_calls_per_day)
    if max_calls is not None and usage.calls_today >= max_calls:
        return Decision.refuse(
            Reason.DAILY_CALLS_CAP,
            detail=f"{usage.calls_today} calls today, the most is {max_calls}",
        )
    day_left = _minutes_left(caps.max_minutes_per_day, usage.seconds_today)
    if day_left is not None and day_left <= 0:
        return Decision.refuse(
            Reason.DAILY_MINUTES_CAP,
            detail=f"{usage.seconds_today} s used today, the most is "
            f"{caps.max_minutes_per_day} min",
        )
    week_left = _minutes_left(caps.max_minutes_per_week, usage.seconds_this_week)
    if week_left is not None and week_left <= 0:
        return Decision.refuse(
            Reason.WEEKLY_MINUTES_CAP,
            detail=f"{usage.seconds_this_week} s used this week, the most is "
            f"{caps.max_minutes_per_week} min",
        )

    candidates = [
        (SITE_MAX, site_max_s),
        (PRISONER, _cap(prisoner_max_s)),
        (CONTACT, _cap(contact_max_s)),
        (DAILY_MINUTES, day_left),
        (WEEKLY_MINUTES, week_left),
        (WINDOW, window_left_s),
    ]
    limited_by, seconds = SITE_MAX, site_max_s
    for name, limit in candidates:
        if limit is not None and limit < seconds:
            limited_by, seconds = name, limit

    if free:
        return CallLimit(seconds=seconds, reserve_pence=0, limited_by=limited_by)

    first_minute = one_minute_pence(rate, rounding)
    if available_pence < first_minute:
        return Decision.refuse(
            Reason.INSUFFICIENT_CREDIT,
            detail=f"balance {available_pence}p, the first minute costs {first_minute}p "
            f"(rate {rate} centipence/min, {Rounding(rounding)})",
        )
    affordable = affordable_seconds(available_pence, rate, rounding, seconds)
    if affordable < seconds:
        limited_by, seconds = CREDIT, affordable
    return CallLimit(
        seconds=seconds,
        reserve_pence=charge_pence(rate, seconds, rounding),
        limited_by=limited_by,
    )
