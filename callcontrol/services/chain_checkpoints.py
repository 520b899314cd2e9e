"""Checkpoints of the recording chain: write them (daemon, purge) and check the chain against
them (``recordings verify --public-key``). The rules are domain/checkpoints.py; the key and the
file, adapters/anchor.py.

A checkpoint is written by the daemon whenever the chain's head moved, and at least every
[recording] checkpoint_interval_s (an hour) even when it did not, and by every purge once its
deletion receipts are committed. Each goes to the checkpoints file (the copy that counts, meant
to leave the host) and to ``recording_chain_checkpoints`` (a convenience copy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters import anchor
from callcontrol.adapters.anchor import PublicKey, SigningKey
from callcontrol.adapters.db.tables import ChainCheckpoint, ChainEntry, ChainHead
from callcontrol.domain import checkpoints
from callcontrol.domain.checkpoints import Checkpoint, Found

log = logging.getLogger("callcontrol.recordings")
Sessions = async_sessionmaker[AsyncSession]


async def _head(sessions: Sessions) -> tuple[int, str]:
    async with sessions() as s:
        head = await s.get(ChainHead, 1)
    if head is None:
        raise RuntimeError("the recording chain has no head row: the database was tampered with")
    return int(head.entries), str(head.entry_hash)


async def latest(sessions: Sessions) -> Checkpoint | None:
    """The last checkpoint written to the database, if any."""
    async with sessions() as s:
        row = await s.scalar(select(ChainCheckpoint).order_by(ChainCheckpoint.id.desc()).limit(1))
    return None if row is None else _checkpoint(row)


def _checkpoint(row: ChainCheckpoint) -> Checkpoint:
    return Checkpoint(row.entries, row.entry_hash, row.at, row.key_id, row.signature)


async def write(sessions: Sessions, key: SigningKey, file: Path, now: datetime) -> Checkpoint:
    """Sign the chain's head as it is now; append it to the file, then to the database."""
    entries, head = await _head(sessions)
    text = checkpoints.payload(entries, head, now, key.key_id)
    cp = Checkpoint(entries, head, now, key.key_id, key.sign(text))
    await asyncio.to_thread(anchor.append, file, cp)
    async with sessions.begin() as s:
        s.add(
            ChainCheckpoint(
                entries=cp.entries, entry_hash=cp.head, at=cp.at, key_id=cp.key_id,
                signature=cp.signature,
            )
        )  # fmt: skip
    # The whole line in the log too: a log shipped to a remote syslog carries the anchor off
    # the host as well.
    log.info("recording chain checkpoint: %s", cp.line())
    return cp


class Checkpointer:
    """The daemon's writer: a checkpoint when the head moved or the last one is an interval old.

    Cheap when nothing changed: one read of the head row per ``tick``.
    """

    def __init__(self, sessions: Sessions, key: SigningKey, file: Path, interval_s: float) -> None:
        self.sessions, self.key, self.file, self.interval_s = sessions, key, file, interval_s
        self.last: Checkpoint | None = None
        self._loaded = False

    async def tick(self, now: datetime) -> Checkpoint | None:
        """Write a checkpoint if one is due; returns it (None when none was due)."""
        if not self._loaded:
            self.last, self._loaded = await latest(self.sessions), True
        entries, head = await _head(self.sessions)
        if not checkpoints.due(self.last, entries, head, now, self.interval_s):
            return None
        self.last = await write(self.sessions, self.key, self.file, now)
        return self.last


async def stored(sessions: Sessions) -> list[Found]:
    """The checkpoints in the database, oldest first."""
    async with sessions() as s:
        rows = (await s.scalars(select(ChainCheckpoint).order_by(ChainCheckpoint.id))).all()
    return [Found(f"database row {r.id}", _checkpoint(r)) for r in rows]


async def verify(
    sessions: Sessions, public: PublicKey, found: Iterable[Found | str]
) -> tuple[list[str], int]:
    """Every problem of the chain in the database against the checkpoints given (and their
    lines that could not be read); and how many checkpoints were checked. No checkpoint at all
    is a problem: with nothing to check against, nothing is proven."""
    found = list(found)
    problems = [f for f in found if isinstance(f, str)]
    good = [f for f in found if isinstance(f, Found)]
    async with sessions() as s:
        hashes = list(
            (await s.scalars(select(ChainEntry.entry_hash).order_by(ChainEntry.id))).all()
        )
    problems += checkpoints.check(good, hashes, public.signed)
    if not good:
        problems.append("no checkpoint to check the chain against: nothing anchors it")
    return problems, len(good)
