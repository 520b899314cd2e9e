"""What a call costs: tariffs per destination class, and the charge for talk time.

Money is whole pence (``int``). Rates are whole hundredths of a penny per minute,
"centipence per minute": 3.1p/min is 310, 6.88p/min is 688. Every sum here is exact
integer arithmetic; no float ever touches money.

Free calls (privileged numbers, globally allowed free numbers) are the caller's business:
it simply does not charge them. The tariffs here are for calls that are charged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

CENTIPENCE_PER_PENNY = 100
SECONDS_PER_MINUTE = 60
# rate (centipence per minute) * seconds / _PER_SECOND_DIVISOR = pence
_PER_SECOND_DIVISOR = CENTIPENCE_PER_PENNY * SECONDS_PER_MINUTE

OTHER = "other"  # the class whose tariff applies to any class without its own


class Rounding(StrEnum):
    """How talk time is rated before the charge is rounded to the penny."""

    PER_SECOND = "per_second"  # every second at rate/60
    PER_STARTED_MINUTE = "per_started_minute"  # every started minute charged whole


@dataclass(frozen=True)
class Tariff:
    """The rate for one destination class.

    ``destination_class`` is one of ``numbers.destination_class``'s answers: "uk_landline",
    "uk_mobile", "international", "short" or "other". ``rate`` applies Monday to Friday,
    ``weekend_rate`` on Saturday and Sunday (local time); ``None`` means the same as ``rate``.
    """

    destination_class: str
    rate: int  # centipence per minute
    weekend_rate: int | None = None  # centipence per minute, Saturday and Sunday

    def __post_init__(self) -> None:
        if not self.destination_class:
            raise ValueError("a tariff needs a destination class")
        if self.rate < 0:
            raise ValueError(f"tariff {self.destination_class}: rate {self.rate} is negative")
        if self.weekend_rate is not None and self.weekend_rate < 0:
            raise ValueError(
                f"tariff {self.destination_class}: weekend rate {self.weekend_rate} is negative"
            )


# Defaults, in centipence per minute: UK landlines 3.1p/min, UK mobiles 6.88p/min.
# International: 25p/min, a deliberately
# conservative flat figure, because real costs vary a great deal by country; sites should
# set their own. Short codes: 0 (a short code can only be dialled at all when it is on the
# global numbers list). "other" (non-geographic, or a number we could not classify): the
# mobile rate, so nothing unknown is cheaper than a known class.
DEFAULT_TARIFFS: tuple[Tariff, ...] = (
    Tariff("uk_landline", 310),
    Tariff("uk_mobile", 688),
    Tariff("international", 2500),
    Tariff("short", 0),
    Tariff(OTHER, 688),
)


def tariffs_by_class(tariffs: Iterable[Tariff]) -> dict[str, Tariff]:
    """The tariffs keyed by destination class, for ``rate_for``. ValueError on a duplicate."""
    by_class: dict[str, Tariff] = {}
    for tariff in tariffs:
        if tariff.destination_class in by_class:
            raise ValueError(f"two tariffs for destination class {tariff.destination_class!r}")
        by_class[tariff.destination_class] = tariff
    return by_class


def rate_for(tariffs: Mapping[str, Tariff], destination_class: str, local_start: datetime) -> int:
    """The rate (centipence per minute) for a call that starts at ``local_start``.

    ``local_start`` is in the prison's local time zone; Saturday and Sunday (by its local
    date) take the weekend rate. The rate at the start holds for the whole call. A class
    without its own tariff takes the "other" tariff; KeyError when there is none.
    """
    if local_start.tzinfo is None or local_start.utcoffset() is None:
        raise ValueError("local_start must be timezone-aware")
    tariff = tariffs.get(destination_class)
    if tariff is None:
        if OTHER not in tariffs:
            raise KeyError(f"no tariff for {destination_class!r} and no {OTHER!r} tariff")
        tariff = tariffs[OTHER]
    weekend = local_start.weekday() >= 5
    if weekend and tariff.weekend_rate is not None:
        return tariff.weekend_rate
    return tariff.rate


def _divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator to the nearest whole number, halves up (both >= 0)."""
    return (2 * numerator + denominator) // (2 * denominator)


def charge_pence(rate: int, talk_seconds: int, rounding: Rounding) -> int:
    """What ``talk_seconds`` at ``rate`` cost, in whole pence.

    Per second: rate * seconds / 6000 pence. Per started minute: rate * ceil(seconds / 60)
    / 100 pence. Then to the nearest penny, halves up. 0 seconds cost 0. ValueError on a
    negative rate or negative seconds.
    """
    if rate < 0:
        raise ValueError(f"rate {rate} is negative")
    if talk_seconds < 0:
        raise ValueError(f"talk time {talk_seconds} s is negative")
    rounding = Rounding(rounding)
    if rounding is Rounding.PER_SECOND:
        return _divide_half_up(rate * talk_seconds, _PER_SECOND_DIVISOR)
    minutes = -(-talk_seconds // SECONDS_PER_MINUTE)
    return _divide_half_up(rate * minutes, CENTIPENCE_PER_PENNY)


def one_minute_pence(rate: int, rounding: Rounding) -> int:
    """What the first minute costs: the least credit a charged call needs to start."""
    return charge_pence(rate, SECONDS_PER_MINUTE, rounding)


def affordable_seconds(available_pence: int, rate: int, rounding: Rounding, cap_s: int) -> int:
    """The most talk seconds, at most ``cap_s``, whose charge is within ``available_pence``.

    Exact: a binary search over ``charge_pence`` (which never falls as seconds grow), so
    the answer agrees with what will be charged. A rate of 0 gives ``cap_s``. With a
    negative balance nothing is affordable, not even 0 s free of charge: the answer is 0.
    ValueError on a negative ``cap_s`` or rate.
    """
    if cap_s < 0:
        raise ValueError(f"cap {cap_s} s is negative")
    if rate < 0:
        raise ValueError(f"rate {rate} is negative")
    if available_pence < 0:
        return 0
    if rate == 0 or charge_pence(rate, cap_s, rounding) <= available_pence:
        return cap_s
    low, high = 0, cap_s  # charge(low) <= available < charge(high)
    while high - low > 1:
        middle = (low + high) // 2
        if charge_pence(rate, middle, rounding) <= available_pence:
            low = middle
        else:
            high = middle
    return low
