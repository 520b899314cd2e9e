"""Recordings for staff: search them, and play or download one (each play and download audited).

Search takes the call history's filters (prisoner, cell, number, since, until, limit, before:
services/call_history.py parses them, so they mean the same everywhere) and a call id.

Fetching a recording's audio is where the store must be trusted least. Before any byte goes
out the service checks, in this order, and refuses (``Damaged``, with an ERROR log line that
starts ``RECORDING TAMPERED`` for the operator's alerting, and an audit entry) when any fails:

- the row is what its hash chain entry says (its event hashes to its ``entry_hash``, and the
  chain holds that entry with the same body): a row rewritten in the database is caught here;
- the file is named by the row's SHA-256 (64 hex digits: no other path can be named);
- the file's bytes hash to that SHA-256 (and are as many as the row says).

The bytes served are the bytes hashed (read once into memory; a recording is about 11 MB an
hour at the default 24 kb/s), so a file changed between the check and the sending cannot slip
through.

Audit: every download is an entry (action ``download``). A play is an entry (``play``) when it
starts: a browser's <audio> fetches a recording in several HTTP requests (a range at a time, and
again on every seek), and the console names each play with a ``play`` id, so the requests of
one play after the first are that same play (kept in memory for PLAY_IDLE_S; without an id
every request is a play of its own). The entry is written, and committed, before the bytes are
returned to the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from callcontrol.domain import chain
from callcontrol.domain.roles import Right
from callcontrol.services import call_history
from callcontrol.services.actors import Actor, AuditNote, require
from callcontrol.services.errors import Invalid, NotFound, Refused

log = logging.getLogger("callcontrol.recordings.access")

PLAY, DOWNLOAD = "play", "download"
TAMPERED = "recording_tampered"  # the audit action of a refusal for a damaged recording
PLAY_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
PLAY_IDLE_S = 1800.0  # a play's requests after this long without one are a new play
MAX_PLAYS = 10_000  # plays remembered at once (the oldest forgotten first)
# The largest file served (a day's call at 24 kb/s stereo is about 260 MB): a row claiming more
# is refused before anything is read.
MAX_BYTES = 512 * 1024 * 1024


class Damaged(Refused):
    """The recording's row, chain entry or file is not as it was written: nothing is served."""


class Gone(NotFound):
    """The recording was purged (its retention ended): its audio is no longer kept."""


@dataclass(frozen=True)
class RecordingQuery:
    """Which recordings to list, newest (highest id) first. Times are UTC-aware; ``until``
    exclusive; ``before`` pages: only recordings older than that recording id."""

    prisoner: str | None = None  # prison number
    cell: str | None = None  # cell name
    number: str | None = None  # normalised (E.164 or a short code)
    since: datetime | None = None
    until: datetime | None = None
    call_id: int | None = None
    limit: int = call_history.DEFAULT_LIMIT
    before: int | None = None


@dataclass(frozen=True)
class RecordingView:
    """One recording as staff see it."""

    recording_id: int
    call_id: int
    prisoner: str  # prison number
    prisoner_name: str
    cell: str
    number: str
    started_at: datetime  # when the called party accepted the call
    duration_ms: int
    bytes: int
    codec: str
    channels: int
    sha256: str
    purged_at: datetime | None = None


@dataclass(frozen=True)
class StoredRecording:
    """A recording with what its integrity is checked against."""

    view: RecordingView
    file_name: str
    event_body: str  # the row's event as canonical JSON (domain/chain.py)
    prev_entry_hash: str
    entry_hash: str
    chain_body: str | None  # the body of the chain entry with ``entry_hash`` (None: no entry)


@dataclass(frozen=True)
class SearchPage:
    rows: Sequence[RecordingView]
    next_before: int | None  # pass as ``before`` for the next (older) page; None: no more


@dataclass(frozen=True)
class Audio:
    """A recording's stored file, checked against its SHA-256; ``audited`` says whether this
    request wrote an audit entry (False: a further request of a play already audited)."""

    view: RecordingView
    data: bytes
    audited: bool


class RecordingStore(Protocol):
    """The records (adapters/db/recording_store.py implements it)."""

    async def search(self, query: RecordingQuery) -> Sequence[RecordingView]:
        """Up to ``query.limit`` matching recordings, newest (highest id) first."""
        ...

    async def stored(self, recording_id: int) -> StoredRecording | None: ...


class AudioFiles(Protocol):
    """The store's files (adapters/storage implements it)."""

    async def read(self, file_name: str, longest: int) -> bytes:
        """The whole file; FileNotFoundError when it is missing, ValueError when it holds
        more than ``longest`` bytes."""
        ...


class AuditWriter(Protocol):
    async def record(self, note: AuditNote) -> None:
        """Write (and commit) the entry; raises when it could not be written."""
        ...


# The filters a search shares with the call history (call_history.parse_filter's).
SHARED_FILTERS = ("prisoner", "cell", "number", "since", "until", "limit", "before")


def parse_query(
    *, tz: ZoneInfo, region: str, call_id: str | int | None = None, **filters: str | int | None
) -> RecordingQuery:
    """The query from text as staff typed it (SHARED_FILTERS and ``call_id``); ``Invalid``
    says what is wrong."""
    unknown = set(filters) - set(SHARED_FILTERS)
    if unknown:
        raise Invalid(f"unknown filter(s): {', '.join(sorted(unknown))}")
    number = filters.get("number")
    try:
        f = call_history.parse_filter(tz=tz, region=region, **filters)  # type: ignore[arg-type]
    except call_history.HistoryError as e:
        raise Invalid(str(e)) from None
    call = _call_id(call_id)
    if number is not None and f.number is None:
        raise Invalid(f"{str(number).strip()!r} is not a telephone number")
    return RecordingQuery(
        prisoner=f.prisoner, cell=f.cell, number=f.number, since=f.since, until=f.until,
        call_id=call, limit=f.limit, before=f.before,
    )  # fmt: skip


class _Plays:
    """The plays seen lately: (person, role, recording, play id) -> last request (monotonic)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seen: OrderedDict[tuple[str, str, int, str], float] = OrderedDict()

    def ongoing(self, key: tuple[str, str, int, str]) -> bool:
        """Is this request part of a play already audited? (It is remembered either way.)"""
        now = self.clock()
        last = self.seen.pop(key, None)
        self.seen[key] = now
        while len(self.seen) > MAX_PLAYS:
            self.seen.popitem(last=False)
        return last is not None and now - last <= PLAY_IDLE_S

    def forget(self, key: tuple[str, str, int, str]) -> None:
        self.seen.pop(key, None)


class RecordingService:
    """Search, play and download recordings (Right.RECORDINGS: officer, admin, auditor)."""

    def __init__(
        self,
        store: RecordingStore,
        files: AudioFiles,
        audit: AuditWriter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.files, self.audit = store, files, audit
        self._plays = _Plays(clock)

    @staticmethod
    def _allowed(actor: Actor) -> None:
        require(actor, Right.RECORDINGS, "search, play or download recordings")

    async def search(self, actor: Actor, query: RecordingQuery) -> SearchPage:
        """One page of recordings, and where the next one starts."""
        self._allowed(actor)
        rows = await self.store.search(_one_more(query))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return SearchPage(rows, rows[-1].recording_id if more and rows else None)

    async def view(self, actor: Actor, recording_id: int) -> RecordingView:
        """One recording's details (nothing of its audio, so not audited)."""
        self._allowed(actor)
        return (await self._found(recording_id)).view

    async def check(self, actor: Actor, recording_id: int) -> RecordingView:
        """The recording, once its row, chain entry and file are found intact (Damaged, Gone
        or NotFound otherwise): what a page shows before it offers a player. Nothing of the
        audio leaves, so nothing is audited but a refusal."""
        self._allowed(actor)
        found = await self._found(recording_id, playable=True)
        await self._checked(actor, found)
        return found.view

    async def _found(self, recording_id: int, playable: bool = False) -> StoredRecording:
        found = await self.store.stored(recording_id)
        if found is None:
            raise NotFound(f"no recording {recording_id}")
        v = found.view
        if playable and v.purged_at is not None:
            when = v.purged_at.isoformat(timespec="seconds")
            raise Gone(f"recording {v.recording_id} (call {v.call_id}) was purged on {when}")
        return found

    async def fetch(
        self, actor: Actor, recording_id: int, purpose: str, play_id: str | None = None
    ) -> Audio:
        """The recording's audio for ``purpose`` (PLAY or DOWNLOAD), checked and audited."""
        self._allowed(actor)
        if purpose not in (PLAY, DOWNLOAD):
            raise Invalid(f"purpose {purpose!r} is not {PLAY} or {DOWNLOAD}")
        if play_id is not None and not PLAY_ID.fullmatch(play_id):
            raise Invalid("a play id is 8 to 64 letters, digits, '-' or '_'")
        found = await self._found(recording_id, playable=True)
        v = found.view
        data = await self._checked(actor, found)
        key = (actor.name, actor.role, v.recording_id, play_id or "")
        continued = purpose == PLAY and play_id is not None and self._plays.ongoing(key)
        if not continued:
            try:
                await self.audit.record(
                    AuditNote(
                        actor=actor.name, role=actor.role, action=purpose,
                        target=f"recording {v.recording_id}",
                        detail=f"call {v.call_id}; prisoner {v.prisoner}; sha256 {v.sha256}"
                        + (f"; play {play_id}" if play_id else ""),
                    )
                )  # fmt: skip
            except BaseException:
                self._plays.forget(key)  # not audited: the next request must try again
                raise
        return Audio(v, data, audited=not continued)

    async def _checked(self, actor: Actor, found: StoredRecording) -> bytes:
        label = f"recording {found.view.recording_id} (call {found.view.call_id})"
        problem, data = self._row_problem(found), b""
        if problem is None:
            try:
                data = await self.files.read(found.file_name, found.view.bytes)
            except FileNotFoundError:
                problem = f"its file {found.file_name} is missing"
            except ValueError:
                problem = f"its file {found.file_name} is larger than its row says"
        if problem is None:
            # Off the event loop: an hour's recording takes tens of milliseconds to hash, and
            # the same loop decides calls (hashlib releases the GIL on large buffers).
            digest = await asyncio.to_thread(_sha256, data)
            if digest != found.view.sha256 or len(data) != found.view.bytes:
                problem = (
                    f"its file {found.file_name} was altered (SHA-256 now {digest}, "
                    f"{len(data)} bytes; recorded {found.view.sha256}, {found.view.bytes} bytes)"
                )
        if problem is None:
            return data
        log.error(
            "RECORDING TAMPERED: %s: %s; refused to %s (%s); run `callcontrol recordings verify`",
            label, problem, actor.name, actor.role,
        )  # fmt: skip
        try:
            await self.audit.record(
                AuditNote(
                    actor=actor.name, role=actor.role, action=TAMPERED,
                    target=f"recording {found.view.recording_id}", detail=problem[:2000],
                )
            )  # fmt: skip
        except Exception:
            log.exception("could not audit the refusal of %s", label)
        raise Damaged(
            f"{label} cannot be played: {problem}. The store may have been tampered with; "
            "nothing was served. Tell the system administrator (`callcontrol recordings verify`)."
        )

    @staticmethod
    def _row_problem(found: StoredRecording) -> str | None:
        v = found.view
        if chain.entry_hash(found.prev_entry_hash, found.event_body) != found.entry_hash:
            return "its row does not match its own chain hash (the row was changed)"
        if found.chain_body != found.event_body:
            return "its row does not match its entry in the recording chain"
        if not SHA256_HEX.fullmatch(v.sha256) or found.file_name != f"{v.sha256}.ogg":
            return f"its file name {found.file_name!r} is not its SHA-256"
        if not 0 < v.bytes <= MAX_BYTES:
            return f"its row says {v.bytes} bytes (at most {MAX_BYTES} are served)"
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _one_more(query: RecordingQuery) -> RecordingQuery:
    return replace(query, limit=query.limit + 1)


def _call_id(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise Invalid(f"call_id must be a call's number (1 to 18 digits), not {str(value)!r}")
    return int(text)
