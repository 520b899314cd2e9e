"""What the balance enquiry tells a prisoner: their money, and the minutes left today.

A prisoner keys the service code ([site] balance_code, "*100") after the PIN and hears, for
example, "your balance is 4 pounds 20 pence; you have 25 minutes left today". Both figures are
worked out here from plain values the service layer gathered:

- the balance is the *available* credit: the account's balance less what is reserved for a
  call in progress (it can be negative after a staff adjustment: "minus ...");
- the minutes left today are the whole minutes the prisoner could still talk today on paid
  calls to their approved contacts: the fewest of the day's minutes left (the daily cap), the
  week's (the weekly cap), what the available credit buys (at the dearest rate among their
  approved contacts, so that the figure holds whoever they call), the calling time left in
  today's windows, and the time to local midnight. None when the day's calls cap is reached.
  Rounded down: the prisoner is never promised a minute they do not have.

Free calls (legal advisers, numbers allowed for everyone) cost nothing and count against no
allowance; they are not what the figure is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from callcontrol.domain.limits import Caps, Usage
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    GlobalNumber,
)
from callcontrol.domain.numbers import destination_class
from callcontrol.domain.tariffs import OTHER, Rounding, Tariff, affordable_seconds, rate_for

# What set the minutes (for the log and the stored detail), in the order ties are named;
# the credit only when it is strictly the least.
DAILY_CALLS = "daily_calls"  # the day's calls cap is reached: no minutes
DAILY_MINUTES = "daily_minutes"
WEEKLY_MINUTES = "weekly_minutes"
WINDOW = "window"
DAY_END = "day_end"
CREDIT = "credit"

PENCE_PER_POUND = 100
SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class BalanceFigures:
    """What is said to the prisoner, and why (``limited_by``, ``rate``: for the record)."""

    available_pence: int  # balance less reserved; may be negative
    minutes_left: int  # whole minutes, >= 0
    limited_by: str  # one of the names above
    rate: int  # centipence a minute used for the credit's minutes (0: credit not counted)

    @property
    def negative(self) -> bool:
        return self.available_pence < 0

    @property
    def pounds(self) -> int:
        """Whole pounds of the amount, without its sign."""
        return abs(self.available_pence) // PENCE_PER_POUND

    @property
    def pence(self) -> int:
        """The pence beyond the whole pounds (0 to 99), without the sign."""
        return abs(self.available_pence) % PENCE_PER_POUND

    def describe(self) -> str:
        """One line for the log and the stored decision."""
        return (
            f"available {self.available_pence}p; {self.minutes_left} min left today "
            f"(limited by {self.limited_by}; rate {self.rate} centipence/min)"
        )


def enquiry_rate(
    contacts: Sequence[Contact],
    global_numbers: Mapping[str, GlobalNumber],
    tariffs: Mapping[str, Tariff],
    region: str,
    local_now: datetime,
) -> int:
    """The rate (centipence a minute) the credit's minutes are counted at: the dearest rate, now,
    among the prisoner's approved contacts that are charged (not legal, not on the global list,
    which makes them free or blocked). With none, the site's catch-all ("other") tariff, as a
    prisoner's first contact may be anywhere; 0 when there is not even that (no tariffs)."""
    rates = [
        rate_for(tariffs, destination_class(c.number, region), local_now)
        for c in contacts
        if c.status is ContactStatus.APPROVED
        and c.kind is not ContactKind.LEGAL
        and c.number not in global_numbers
        and (destination_class(c.number, region) in tariffs or OTHER in tariffs)
    ]
    if rates:
        return max(rates)
    return rate_for(tariffs, OTHER, local_now) if OTHER in tariffs else 0


def _left(cap: int | None, used_s: int) -> int | None:
    """Seconds left of a cap in minutes (0 or None: no cap), never below 0."""
    if not cap:
        return None
    return max(0, cap * SECONDS_PER_MINUTE - used_s)


def balance_figures(
    *,
    available_pence: int,
    usage: Usage,
    caps: Caps,
    rate: int,
    rounding: Rounding,
    windows_left_s: int | None,
    day_left_s: int,
) -> BalanceFigures:
    """The figures of one enquiry (see the module's docstring).

    ``windows_left_s``: calling time left in today's windows (None: no windows);
    ``day_left_s``: time to the local day's end. ``rate`` 0: the credit limits nothing."""
    if day_left_s < 0:
        raise ValueError(f"time to the day's end cannot be negative: {day_left_s} s")
    if caps.max_calls_per_day and usage.calls_today >= caps.max_calls_per_day:
        return BalanceFigures(available_pence, 0, DAILY_CALLS, rate)
    candidates: list[tuple[str, int | None]] = [
        (DAILY_MINUTES, _left(caps.max_minutes_per_day, usage.seconds_today)),
        (WEEKLY_MINUTES, _left(caps.max_minutes_per_week, usage.seconds_this_week)),
        (WINDOW, windows_left_s),
        (DAY_END, day_left_s),
    ]
    limited_by, seconds = min(
        ((name, left) for name, left in candidates if left is not None), key=lambda c: c[1]
    )
    if rate > 0:
        # What the credit pays for, at most what the other limits leave (0 when negative).
        affordable = affordable_seconds(available_pence, rate, rounding, seconds)
        if affordable < seconds:
            limited_by, seconds = CREDIT, affordable
    return BalanceFigures(available_pence, seconds // SECONDS_PER_MINUTE, limited_by, rate)
