"""The kiosk's own reads on SQLAlchemy (services/kiosk_ports.py's KioskStore): a prisoner and
their cellmates with their PIN hashes, which no operator's view carries. Everything else the
kiosk does goes through the operator's services."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.domain.model import Prisoner


class SqlKioskStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def account(self, prison_number: str) -> Prisoner | None:
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(m.Prisoner, m.Cell.name)
                    .outerjoin(m.Cell, m.Cell.id == m.Prisoner.cell_id)
                    .where(m.Prisoner.prison_number == prison_number)
                )
            ).first()
        if row is None:
            return None
        p, cell = row
        return Prisoner(p.id, p.prison_number, p.name, p.pin_hash, cell, p.active)

    async def cellmates(self, prisoner: Prisoner) -> Sequence[Prisoner]:
        async with self.sessions() as s:
            rows = await s.scalars(
                select(m.Prisoner)
                .join(m.Cell, m.Cell.id == m.Prisoner.cell_id)
                .where(m.Cell.name == prisoner.cell, m.Prisoner.id != prisoner.id)
            )
            return [
                Prisoner(p.id, p.prison_number, p.name, p.pin_hash, prisoner.cell, p.active)
                for p in rows
            ]
