"""The cells' handsets as Asterisk needs them, and the counter that says when they changed.

Read by `callcontrol asterisk sync`, by the daemon's cells sync (services/cells_sync.py) and by
`callcontrol asterisk check`. The counter (table cells_version) is bumped by triggers on
``cells`` (migration 0009), so every writer is seen, not only this program's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import (
    check_schema_current,
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.config import Settings
from callcontrol.domain.model import CellEndpoint


class SqlCellEndpoints:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def version(self) -> int:
        """The cells' version: changes whenever an endpoint may have (one row read)."""
        async with self.sessions() as s:
            value = await s.scalar(select(m.CellsVersion.version).where(m.CellsVersion.id == 1))
        if value is None:
            raise RuntimeError("cells_version has no row: run `callcontrol db upgrade`")
        return int(value)

    async def endpoints(self) -> tuple[int, list[CellEndpoint]]:
        """The enabled handsets' endpoints, with the version they were read at (one
        snapshot: on PostgreSQL a repeatable-read transaction, on SQLite one transaction)."""
        async with self.sessions() as s, s.begin():
            conn = await s.connection()
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            version = await s.scalar(select(m.CellsVersion.version).where(m.CellsVersion.id == 1))
            rows = (
                await s.execute(
                    select(
                        m.Cell.name, m.Cell.sip_username, m.Cell.sip_realm, m.Cell.sip_md5_cred
                    ).where(m.Cell.enabled.is_(True))
                )
            ).all()
        return int(version or 0), [
            CellEndpoint(r.name, r.sip_username, r.sip_realm, r.sip_md5_cred) for r in rows
        ]

    async def handsets(self) -> dict[str, bool]:
        """Every cell's SIP username and whether its handset is enabled."""
        async with self.sessions() as s:
            rows = (await s.execute(select(m.Cell.sip_username, m.Cell.enabled))).all()
        return {r.sip_username: bool(r.enabled) for r in rows}


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[SqlCellEndpoints]:
    """For a command: the settings' database, whose schema must be current; closed after."""
    engine = make_engine(database_url(settings))
    try:
        await check_schema_current(engine)
        yield SqlCellEndpoints(session_factory(engine))
    finally:
        await engine.dispose()
