"""Follow the call journal: read what Asterisk appended since last time, keep it with the
position reached, and answer "what does the journal say of this call?" from what was kept.

Today's alternative, reading the whole journal at every AMI reconnect and every live-calls
request, grows with every call ever made and ran on the event loop. Here each catch-up reads
only the new bytes (in a thread), and stores the calls they mention together with the new
position in one transaction (JournalStore): a restart resumes at that position and still knows
the acceptances of calls read earlier but not yet settled. A line written while the daemon was
down lies after the position: it is read when the daemon comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Protocol

from callcontrol.domain.call_end import JournalEntry, read_journal
from callcontrol.domain.call_end import JournalPosition as Position

log = logging.getLogger("callcontrol.journal")


class Batch(Protocol):
    lines: list[str]
    position: Position | None
    more: bool
    notes: list[str]


class JournalFiles(Protocol):
    """The journal's files (adapters/journal_file.py JournalFile). Blocking: run in a thread."""

    path: Path

    def read(self, pos: Position | None) -> Batch: ...

    def rotation_due(self, max_bytes: int, max_age_s: float, now: datetime) -> bool: ...

    def rotate(self, now: datetime) -> Path | None: ...


class JournalStore(Protocol):
    """What was read, kept (adapters/db/journal_store.py)."""

    async def position(self) -> Position | None: ...

    async def save(self, calls: Mapping[str, JournalEntry], position: Position | None) -> None:
        """Merge ``calls`` into what is kept (domain/call_end.py merge) and set the position,
        in one transaction."""
        ...

    async def entries(self, uniqueids: Iterable[str]) -> dict[str, JournalEntry]: ...


class JournalFollower:
    def __init__(self, files: JournalFiles, store: JournalStore) -> None:
        self.files, self.store = files, store
        self._lock = asyncio.Lock()
        self._position: Position | None = None
        self._loaded = False

    async def catch_up(self) -> int:
        """Read and keep every whole line appended since the last catch-up; returns how many.
        One at a time: a second caller waits for the first and then reads what is left."""
        async with self._lock:
            if not self._loaded:
                self._position, self._loaded = await self.store.position(), True
            total = 0
            while True:
                try:
                    batch = await asyncio.to_thread(self.files.read, self._position)
                except OSError as e:  # settle from what was kept rather than not at all
                    log.error("call journal %s cannot be read: %s", self.files.path, e)
                    return total
                for note in batch.notes:
                    log.warning("call journal: %s", note)
                calls, bad = read_journal(batch.lines)
                for line in bad[-5:]:
                    log.warning("call journal %s: unreadable line %r", self.files.path, line[:200])
                if calls or batch.position != self._position:
                    await self.store.save(calls, batch.position)
                moved = batch.position != self._position
                self._position = batch.position
                total += len(batch.lines)
                if not (batch.more and moved):
                    return total

    async def entry(self, uniqueid: str) -> JournalEntry | None:
        """What the journal says of one call, after catching up."""
        await self.catch_up()
        return (await self.store.entries([uniqueid])).get(uniqueid)

    async def entries(self, uniqueids: Iterable[str]) -> dict[str, JournalEntry]:
        """What the journal says of these calls, after catching up."""
        await self.catch_up()
        return await self.store.entries(list(uniqueids))

    async def rotate_if_due(self, max_bytes: int, max_age_s: float, now: datetime) -> Path | None:
        """Move the journal aside when it is too long or too old (after reading it: the rest is
        read from the rotated file all the same)."""
        await self.catch_up()
        if not await asyncio.to_thread(self.files.rotation_due, max_bytes, max_age_s, now):
            return None
        rotated = await asyncio.to_thread(self.files.rotate, now)
        if rotated is not None:
            log.info("call journal rotated: %s", rotated)
        return rotated
