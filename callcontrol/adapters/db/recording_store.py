"""Recordings from the database (implements services/recording_access.py's RecordingStore).

Search is one statement: the recordings, newest (highest id) first, each joined to its prisoner
and cell, paged by id (``before``) so that a late page costs what the first does. A recording's
integrity facts come with it: its event as its chain entry would say it, and that entry's body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import ChainEntry, Recording
from callcontrol.domain import chain
from callcontrol.services.recording_access import RecordingQuery, RecordingView, StoredRecording

R = Recording


def _columns() -> Select[Any]:
    return (
        select(R, m.Prisoner.prison_number, m.Prisoner.name, m.Cell.name)
        .join(m.Prisoner, m.Prisoner.id == R.prisoner_id)
        .join(m.Cell, m.Cell.id == R.cell_id)
    )


def _view(rec: Recording, prison_number: str, name: str, cell: str) -> RecordingView:
    return RecordingView(
        recording_id=rec.id, call_id=rec.call_id, prisoner=prison_number, prisoner_name=name,
        cell=cell, number=rec.number, started_at=rec.started_at, duration_ms=rec.duration_ms,
        bytes=rec.bytes, codec=rec.codec, channels=rec.channels, sha256=rec.sha256,
        purged_at=rec.purged_at,
    )  # fmt: skip


def statement(q: RecordingQuery) -> Select[Any]:
    """The query for a search (also used by the tests to look at it)."""
    query = _columns()
    if q.prisoner is not None:
        query = query.where(m.Prisoner.prison_number == q.prisoner)
    if q.cell is not None:
        query = query.where(m.Cell.name == q.cell)
    if q.number is not None:
        query = query.where(R.number == q.number)
    if q.since is not None:
        query = query.where(R.started_at >= q.since)
    if q.until is not None:
        query = query.where(R.started_at < q.until)
    if q.call_id is not None:
        query = query.where(R.call_id == q.call_id)
    if q.before is not None:
        query = query.where(R.id < q.before)
    return query.order_by(R.id.desc()).limit(q.limit)


class SqlRecordingStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def search(self, query: RecordingQuery) -> Sequence[RecordingView]:
        async with self.sessions() as s:
            rows = (await s.execute(statement(query))).all()
        return [_view(*row) for row in rows]

    async def stored(self, recording_id: int) -> StoredRecording | None:
        async with self.sessions() as s:
            row = (await s.execute(_columns().where(R.id == recording_id))).one_or_none()
            if row is None:
                return None
            rec = row[0]
            entry_body = await s.scalar(
                select(ChainEntry.body).where(
                    ChainEntry.entry_hash == rec.entry_hash,
                    ChainEntry.kind == "recording",
                    ChainEntry.recording_id == rec.id,
                )
            )
            return StoredRecording(
                view=_view(*row),
                file_name=rec.file_name,
                event_body=chain.canonical(rec.event()),
                prev_entry_hash=rec.prev_entry_hash,
                entry_hash=rec.entry_hash,
                chain_body=entry_body,
            )
