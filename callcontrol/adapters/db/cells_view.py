"""What the console shows of cells: each cell, its state, its handset's PIN lockout and who
lives there (read only; pages/cells.py's CellsView port). The changes go through the services
(Supervisor: disable, enable; the PIN alerts: unlock), which audit them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import HandsetPinState


@dataclass(frozen=True)
class CellInfo:
    name: str
    wing: str
    enabled: bool
    disabled_reason: str
    locked_until: datetime | None  # a PIN lockout in force until then
    prisoners: list[tuple[str, str]] = field(default_factory=list)  # prison number, name


class SqlCellsView:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def _read(self, name: str | None) -> list[CellInfo]:
        now = datetime.now(UTC)
        query = (
            select(m.Cell, HandsetPinState.locked_until)
            .outerjoin(HandsetPinState, HandsetPinState.cell_id == m.Cell.id)
            .order_by(m.Cell.name)
        )
        if name is not None:
            query = query.where(m.Cell.name == name)
        async with self.sessions() as s:
            rows = (await s.execute(query)).all()
            people: dict[int, list[tuple[str, str]]] = {}
            ids = [cell.id for cell, _ in rows]
            if ids:
                found = await s.execute(
                    select(m.Prisoner.cell_id, m.Prisoner.prison_number, m.Prisoner.name)
                    .where(m.Prisoner.cell_id.in_(ids))
                    .order_by(m.Prisoner.prison_number)
                )
                for cell_id, number, person in found:
                    people.setdefault(cell_id, []).append((number, person))
        return [
            CellInfo(
                cell.name,
                cell.wing,
                cell.enabled,
                cell.disabled_reason,
                until if until is not None and until > now else None,
                people.get(cell.id, []),
            )
            for cell, until in rows
        ]

    async def cells(self) -> list[CellInfo]:
        return await self._read(None)

    async def cell(self, name: str) -> CellInfo | None:
        found = await self._read(name)
        return found[0] if found else None
