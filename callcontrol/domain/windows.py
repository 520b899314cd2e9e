"""When may prisoners call? Calling windows, and local days and weeks.

A calling window is a span of local wall-clock time, the same every day, written
"HH:MM-HH:MM" (for example "08:00-12:00"). A window never crosses midnight: its end is
after its start on the same day, so the latest end is "23:59"; for evening calls past
midnight, use two windows ("18:00-23:59" and "00:00-01:00"; they do not join up across
midnight). A window includes its start and excludes its end.

Days and weeks (for the daily and weekly caps) are counted in the prison's time zone and
returned as UTC instants, so they are right across daylight-saving changes (a local day
can be 23 or 25 hours long).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

_SECOND = timedelta(seconds=1)
_SPEC = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


@dataclass(frozen=True, order=True)
class Window:
    """A daily calling window in local time: from ``start`` (included) to ``end`` (excluded)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times, without a time zone")
        if self.end <= self.start:
            raise ValueError(
                f"window {self}: the end must be after the start (a window cannot cross midnight)"
            )

    def contains(self, wall: time) -> bool:
        return self.start <= wall < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _parse_time(hours: str, minutes: str, spec: str) -> time:
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(f"calling window {spec!r}: {hours}:{minutes} is not a time of day")
    return time(h, m)


def parse_window(spec: str) -> Window:
    """One window from "HH:MM-HH:MM". ValueError, naming the text, when it is not one."""
    match = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"calling window {spec!r} is not of the form HH:MM-HH:MM")
    start = _parse_time(match[1], match[2], spec)
    end = _parse_time(match[3], match[4], spec)
    if end <= start:
        raise ValueError(
            f"calling window {spec!r}: the end must be after the start "
            "(a window cannot cross midnight; use two windows)"
        )
    return Window(start, end)


def parse_windows(specs: Sequence[str]) -> tuple[Window, ...]:
    """Windows from their texts, sorted by start.

    ValueError on bad text, an end not after its start, or windows that overlap. Windows
    that touch ("08:00-12:00" and "12:00-13:00") are fine and act as one.
    """
    windows = sorted(parse_window(spec) for spec in specs)
    for earlier, later in zip(windows, windows[1:], strict=False):
        if later.start < earlier.end:
            raise ValueError(f"calling windows {earlier} and {later} overlap")
    return tuple(windows)


def parse_wing_windows(
    wings: Iterable[tuple[str, Sequence[str]]],
) -> dict[str, tuple[Window, ...]]:
    """Per-wing windows from (wing, texts) pairs, as in the billing settings' ``wing_windows``."""
    parsed: dict[str, tuple[Window, ...]] = {}
    for wing, specs in wings:
        try:
            parsed[wing] = parse_windows(specs)
        except ValueError as e:
            raise ValueError(f"wing {wing}: {e}") from None
    return parsed


def windows_for_wing(
    site: Sequence[Window], wing_windows: Mapping[str, Sequence[Window]], wing: str
) -> Sequence[Window]:
    """The wing's own windows when it has an entry, else the site's.

    An entry that is an empty list means what an empty list means for the site: calls at
    any time on that wing.
    """
    return wing_windows.get(wing, site)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _local_wall(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _first_instant(wall: datetime, tz: tzinfo, not_before: datetime | None = None) -> datetime:
    """The first UTC instant (at or after ``not_before``) at which the local clock in ``tz``
    shows ``wall`` (naive) or later.

    An ambiguous wall time (clocks going back) is its first occurrence that is not before
    ``not_before``. A wall time that never happens (clocks going forward) is the moment of
    the jump.
    """
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if _local_wall(candidate, tz) == wall and (not_before is None or candidate >= not_before):
            return candidate
    # Not a real local time: the jump lies between the readings with the two offsets.
    first, second = sorted(wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
    low, high = 0, (second - first) // _SECOND  # local(first + low) < wall <= local(+ high)
    while high - low > 1:
        middle = (low + high) // 2
        if _local_wall(first + middle * _SECOND, tz) >= wall:
            high = middle
        else:
            low = middle
    return first + high * _SECOND


def seconds_left_in_window(windows: Sequence[Window], now_local: datetime) -> int | None:
    """Seconds from ``now_local`` to the end of the window it is in.

    None when there are no windows (no restriction); 0 when ``now_local`` is outside every
    window. Windows that touch or overlap count as one: with 08:00-12:00 and 12:00-13:00,
    at 11:00 there are two hours left. The time is real elapsed time (a window spanning a
    daylight-saving change is an hour shorter or longer), in whole seconds rounded down so
    that a call never runs past the window; under one second left counts as 0.
    ``now_local`` must be timezone-aware, in the prison's time zone.
    """
    if not windows:
        return None
    _require_aware(now_local, "now_local")
    wall = now_local.time().replace(tzinfo=None, fold=0)
    current = [w for w in windows if w.contains(wall)]
    if not current:
        return 0
    end = max(w.end for w in current)
    extended = True
    while extended:
        extended = False
        for w in windows:
            if w.start <= end < w.end:
                end, extended = w.end, True
    tz = now_local.tzinfo
    assert tz is not None  # checked by _require_aware
    now_utc = now_local.astimezone(UTC)
    end_utc = _first_instant(datetime.combine(now_local.date(), end), tz, now_utc)
    return max(0, (end_utc - now_utc) // _SECOND)


def seconds_left_in_windows_today(windows: Sequence[Window], now_local: datetime) -> int | None:
    """Seconds of calling time left today: what remains of the window ``now_local`` is in and
    every later window of the same local day, added up (real elapsed time, whole seconds
    rounded down). None when there are no windows (no restriction); 0 after the day's last
    window. ``now_local`` must be timezone-aware, in the prison's time zone."""
    if not windows:
        return None
    _require_aware(now_local, "now_local")
    tz = now_local.tzinfo
    assert tz is not None  # checked by _require_aware
    now_utc = now_local.astimezone(UTC)
    wall = now_local.time().replace(tzinfo=None, fold=0)
    total = 0
    for w in windows:  # parse_windows keeps them apart (touching ones add up the same)
        if w.end <= wall:
            continue
        start = now_utc
        if w.start > wall:
            start = _first_instant(datetime.combine(now_local.date(), w.start), tz, now_utc)
        end = _first_instant(datetime.combine(now_local.date(), w.end), tz, now_utc)
        total += max(0, (end - start) // _SECOND)
    return total


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return _first_instant(datetime.combine(day, time(0)), tz)


def local_day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end (exclusive) of the local day ``now`` falls in, as UTC instants.

    On a daylight-saving change the day is 23 or 25 hours long.
    """
    _require_aware(now, "now")
    today = now.astimezone(tz).date()
    return _local_midnight(today, tz), _local_midnight(today + timedelta(days=1), tz)


def local_week_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Monday 00:00 local time of the week ``now`` falls in, as a UTC instant."""
    _require_aware(now, "now")
    today = now.astimezone(tz).date()
    return _local_midnight(today - timedelta(days=today.weekday()), tz)
