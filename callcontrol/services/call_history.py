"""Call history for staff: every decision the daemon made, with what became of the call.

One row per decision (allowed or refused), newest first, with the call's times, talk time,
charge and recording when it was allowed. The filters are parsed and checked here, apart from
any protocol, so that the operator's command and the HTTP API take the same filters and give
the same rows; the query itself is the reader's (adapters/db/history_store.py).

Dates: a filter's ``--since 2026-12-01`` is the start of that day and ``--until 2026-12-01``
the end of it (the whole day included), in the site's time zone (``[site] timezone``), where
staff live; a date and time without an offset (``2026-12-01T14:00``) is local time too, one
with an offset or ``Z`` means what it says. Every time shown is UTC, ISO 8601.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from callcontrol.domain.model import Reason
from callcontrol.domain.numbers import normalise_for_list

# What became of a decision: the outcomes (service: a balance enquiry, no call), and for an
# allowed call how it went.
OUTCOMES = ("allowed", "refused", "service", "connected", "not_connected", "live")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


class HistoryError(ValueError):
    """A filter that cannot be understood (the message says which and why)."""


@dataclass(frozen=True)
class HistoryFilter:
    """Which decisions to list. Times are UTC-aware; ``until`` is exclusive. ``before`` pages:
    only decisions older than that decision id (the previous page's ``next_before``)."""

    prisoner: str | None = None  # prison number
    cell: str | None = None  # cell name
    number: str | None = None  # normalised (E.164 or a short code)
    dialled: str | None = None  # as keyed, matched too (a number that never normalised)
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None  # one of OUTCOMES
    reason: str | None = None  # one of domain.model.Reason
    limit: int = DEFAULT_LIMIT
    before: int | None = None


@dataclass(frozen=True)
class HistoryRow:
    """One decision and its call: the call detail record (CDR)."""

    decision_id: int
    call_id: int | None
    decided_at: datetime
    handset: str
    cell: str | None
    prisoner: str | None  # prison number
    dialled: str
    number: str | None
    decision: str  # allow | refuse | service (a balance enquiry)
    reason: str
    privileged: bool
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    talk_seconds: int | None = None
    charge_pence: int | None = None
    recording_id: int | None = None


@dataclass(frozen=True)
class Page:
    rows: Sequence[HistoryRow]
    next_before: int | None  # pass as ``before`` for the next (older) page; None: no more


class HistoryReader(Protocol):
    """The port to the records (adapters/db/history_store.py implements it)."""

    async def history(self, query: HistoryFilter) -> Sequence[HistoryRow]:
        """Up to ``query.limit`` matching decisions, newest (highest id) first."""
        ...


async def page(reader: HistoryReader, query: HistoryFilter) -> Page:
    """One page of history, and where the next one starts."""
    rows = await reader.history(replace(query, limit=query.limit + 1))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return Page(rows, rows[-1].decision_id if more and rows else None)


async def every_row(
    reader: HistoryReader, query: HistoryFilter, chunk: int = 1000
) -> AsyncIterator[HistoryRow]:
    """Every matching row, newest first, read ``chunk`` at a time (an export of millions
    never holds more than a chunk)."""
    before = query.before
    while True:
        got = await page(reader, replace(query, limit=chunk, before=before))
        for row in got.rows:
            yield row
        if got.next_before is None:
            return
        before = got.next_before


# --- parsing the filters (shared by the command line and the API) ------------------------------


def parse_time(value: str, tz: ZoneInfo, end: bool) -> datetime:
    """A ``since`` (``end`` False) or ``until`` (``end`` True) bound as a UTC-aware instant.

    A date alone is the start of that local day, or for ``until`` the start of the next one (so
    the day is included). A date and time without an offset is local; ``Z`` or ``+01:00`` is
    taken as given."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tz)
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HistoryError(
            f"{value!r} is not a date (2026-12-01) or a date and time (2026-12-01T14:30, "
            "2026-12-01T14:30Z)"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=tz)


def parse_filter(
    *,
    tz: ZoneInfo,
    region: str,
    prisoner: str | None = None,
    cell: str | None = None,
    number: str | None = None,
    since: str | None = None,
    until: str | None = None,
    outcome: str | None = None,
    reason: str | None = None,
    limit: int | str | None = None,
    before: int | str | None = None,
) -> HistoryFilter:
    """The filter from text as staff typed it (command line options, query parameters)."""
    lo = parse_time(since, tz, end=False) if since else None
    hi = parse_time(until, tz, end=True) if until else None
    if lo is not None and hi is not None and hi <= lo:
        raise HistoryError("--until is not after --since: nothing could match")
    if outcome is not None and outcome not in OUTCOMES:
        raise HistoryError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if reason is not None and reason not in {r.value for r in Reason}:
        raise HistoryError(f"reason {reason!r} is not a reason calls are allowed or refused for")
    normalised = dialled = None
    if number is not None:
        found = normalise_for_list(number, region)
        normalised = found.number if found.ok else None
        dialled = number.strip()
        if normalised is None and not dialled:
            raise HistoryError("an empty number matches nothing")
    return HistoryFilter(
        prisoner=prisoner.strip().upper() if prisoner else None,
        cell=cell.strip() if cell else None,
        number=normalised,
        dialled=dialled,
        since=lo,
        until=hi,
        outcome=outcome,
        reason=reason,
        limit=_whole(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT,
        before=_whole(before, "before", None, 1, 2**63 - 1),
    )


def _whole(value: int | str | None, name: str, default: int | None, lo: int, hi: int) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise HistoryError(f"{name} must be a whole number, not {value!r}")
        value = int(value)
    if not lo <= value <= hi:
        raise HistoryError(f"{name} must be between {lo} and {hi}")
    return value
