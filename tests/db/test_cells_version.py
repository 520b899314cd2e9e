"""The cells' version row (migration 0009): bumped by the database in the change's own
transaction, whoever writes, and only when an endpoint may have changed."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db.cell_endpoints import SqlCellEndpoints
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.operator_services import session_services
from callcontrol.services.cells import CellService
from tests.conftest import TESTER


async def test_every_endpoint_change_bumps_the_version_and_nothing_else_does(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    cells = SqlCellEndpoints(sessions)
    try:
        seen = [await cells.version()]

        async def change(work) -> int:  # type: ignore[no-untyped-def]
            async with sessions.begin() as s:
                await work(s)
            seen.append(await cells.version())
            return seen[-1] - seen[-2]

        def ops(s: AsyncSession) -> CellService:
            return session_services(s).cells

        assert await change(lambda s: ops(s).add(TESTER, "A1-01", "Secret-password-1")) == 1
        assert await change(lambda s: ops(s).add(TESTER, "A1-02", "Secret-password-2")) == 1
        assert await change(lambda s: ops(s).disable(TESTER, "A1-01", "misused")) == 1
        pw = "Secret-password-3"
        assert await change(lambda s: ops(s).set_sip_password(TESTER, "A1-02", pw)) == 1
        assert await change(lambda s: ops(s).enable(TESTER, "A1-01")) == 1
        # Not an endpoint's business: the wing, the reason; the version stays.
        assert await change(lambda s: s.execute(text("UPDATE cells SET wing = 'B'"))) == 0
        # Plain SQL by whoever owns the database is seen as well, and a rolled-back change not.
        assert (
            await change(lambda s: s.execute(text("DELETE FROM cells WHERE name = 'A1-02'"))) == 1
        )
        async with sessions() as s:
            await s.execute(text("UPDATE cells SET enabled = false"))
            await s.rollback()
        assert await cells.version() == seen[-1]

        version, endpoints = await cells.endpoints()
        assert version == seen[-1]
        assert [e.sip_username for e in endpoints] == ["A1-01"]
        assert await cells.handsets() == {"A1-01": True}
    finally:
        await engine.dispose()
