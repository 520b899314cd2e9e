"""What was read of the call journal, and where reading stopped, on SQLAlchemy (implements
services/journal.py JournalStore)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.tables import JournalCall, JournalPositionRow, utcnow
from callcontrol.domain.call_end import CallEnd, JournalEntry, JournalPosition, merge

CHUNK = 500  # unique ids per IN (...)


def _entry(row: JournalCall) -> JournalEntry:
    end = None
    if row.ended_at is not None:
        end = CallEnd(
            row.uniqueid, row.accepted_at, row.ended_at, row.dial_status, row.hangup_cause,
            row.hangup_source,
        )  # fmt: skip
    return JournalEntry(accepted_at=row.accepted_at, end=end)


class SqlJournalStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def position(self) -> JournalPosition | None:
        async with self.sessions() as s:
            row = await s.get(JournalPositionRow, 1)
        return None if row is None else JournalPosition(row.device, row.inode, row.offset)

    async def save(
        self, calls: Mapping[str, JournalEntry], position: JournalPosition | None
    ) -> None:
        async with self.sessions.begin() as s:
            ids = list(calls)
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i : i + CHUNK]
                rows = (
                    await s.scalars(select(JournalCall).where(JournalCall.uniqueid.in_(chunk)))
                ).all()
                known = {r.uniqueid: r for r in rows}
                for uid in chunk:
                    row = known.get(uid)
                    entry = merge(None if row is None else _entry(row), calls[uid])
                    if row is None:
                        row = JournalCall(uniqueid=uid)
                        s.add(row)
                    row.accepted_at = entry.accepted_at
                    row.read_at = utcnow()
                    if entry.end is not None:
                        end = entry.end
                        row.ended_at = end.ended_at
                        row.dial_status = end.dial_status
                        row.hangup_cause = end.hangup_cause
                        row.hangup_source = end.hangup_source
            if position is not None:
                kept = await s.get(JournalPositionRow, 1)
                if kept is None:
                    kept = JournalPositionRow(id=1)
                    s.add(kept)
                kept.device, kept.inode = position.device, position.inode
                kept.offset, kept.updated_at = position.offset, utcnow()

    async def entries(self, uniqueids: Iterable[str]) -> dict[str, JournalEntry]:
        ids = list(dict.fromkeys(uniqueids))
        found: dict[str, JournalEntry] = {}
        async with self.sessions() as s:
            for i in range(0, len(ids), CHUNK):
                query = select(JournalCall).where(JournalCall.uniqueid.in_(ids[i : i + CHUNK]))
                found |= {r.uniqueid: _entry(r) for r in (await s.scalars(query)).all()}
        return found
