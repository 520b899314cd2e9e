"""Supervision's SQL: the calls not ended, cells and prisoners switched off and on, and the
audit log (implements SuperviseStore and AuditLog of services/supervise.py).

A change to a cell or a prisoner and its audit entry are written in one transaction, both or
neither, by the operator's store (operator_store.py) this store extends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, inspect, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import audit
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.operator_store import SqlOperatorStore, write_note
from callcontrol.adapters.db.tables import Reservation
from callcontrol.services.supervise import AuditNote, CallRecord, NotFound

HEALTH_TIMEOUT_S = 2.0


def _calls() -> Select[Any]:
    return (
        select(
            m.Call.id,
            m.Cell.name.label("cell"),
            m.Prisoner.prison_number,
            m.Prisoner.name.label("prisoner_name"),
            m.Call.number,
            m.Call.privileged,
            m.Call.channel,
            m.Call.uniqueid,
            m.Call.started_at,
            m.Call.answered_at,
            Reservation.max_seconds,
            m.Call.ended_at,
        )
        .join(m.Cell, m.Cell.id == m.Call.cell_id)
        .join(m.Prisoner, m.Prisoner.id == m.Call.prisoner_id)
        .join(Reservation, Reservation.call_id == m.Call.id, isouter=True)
    )


def _record(row: Any) -> CallRecord:
    return CallRecord(
        call_id=row.id,
        cell=row.cell,
        prison_number=row.prison_number,
        prisoner_name=row.prisoner_name,
        number=row.number,
        privileged=bool(row.privileged),
        channel=row.channel,
        uniqueid=row.uniqueid,
        started_at=row.started_at,
        answered_at=row.answered_at,
        max_seconds=row.max_seconds,
        ended_at=row.ended_at,
    )


_write_note = write_note


def entry_dict(entry: Any) -> dict[str, Any]:
    """An audit entry's columns as plain values."""
    return {a.key: getattr(entry, a.key) for a in inspect(entry).mapper.column_attrs}


class SqlSuperviseStore(SqlOperatorStore):
    """Also the operator's store (its ``transaction()``): the Supervisor's CellService and
    PrisonerService disable, enable, suspend and reinstate through it."""

    async def open_calls(
        self, *, cell: str | None = None, prison_number: str | None = None
    ) -> Sequence[CallRecord]:
        query = _calls().where(m.Call.ended_at.is_(None)).order_by(m.Call.id)
        async with self.sessions() as s:
            if cell is not None:
                await self._cell(s, cell)
                query = query.where(m.Cell.name == cell)
            if prison_number is not None:
                await self._prisoner(s, prison_number)
                query = query.where(m.Prisoner.prison_number == prison_number)
            return [_record(r) for r in await s.execute(query)]

    async def call(self, call_id: int) -> CallRecord | None:
        async with self.sessions() as s:
            row = (await s.execute(_calls().where(m.Call.id == call_id))).first()
            return _record(row) if row else None

    @staticmethod
    async def _cell(s: AsyncSession, name: str) -> None:
        if await s.scalar(select(m.Cell.id).where(m.Cell.name == name)) is None:
            raise NotFound(f"no cell named {name!r}")

    @staticmethod
    async def _prisoner(s: AsyncSession, number: str) -> None:
        found = await s.scalar(select(m.Prisoner.id).where(m.Prisoner.prison_number == number))
        if found is None:
            raise NotFound(f"no prisoner with prison number {number!r}")

    async def is_handset(self, endpoint: str) -> bool:
        query = select(m.Cell.id).where(
            or_(m.Cell.sip_username == endpoint, m.Cell.name == endpoint)
        )
        async with self.sessions() as s:
            return await s.scalar(query.limit(1)) is not None

    async def healthy(self) -> bool:
        """Does the database answer within HEALTH_TIMEOUT_S? (Errors propagate.)"""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S), self.sessions() as s:
                return (await s.scalar(text("SELECT 1"))) == 1
        except TimeoutError:
            return False


class SqlAuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def record(self, note: AuditNote) -> None:
        async with self.sessions.begin() as s:
            await _write_note(s, note)

    async def entries(self, *, limit: int, action: str | None) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            return [entry_dict(e) for e in await audit.list_entries(s, limit, action)]
