"""The PostgreSQL pool checks a connection before use only after it has been idle
(adapters/db/pool_ping.py): no ping for a connection in steady use, a ping (and a fresh
connection) for one that sat idle and died, and the documented cost when the server goes away
within the idle second: that one statement fails, and the next one works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcontrol.adapters.db.engine import make_engine
from callcontrol.adapters.db.pool_ping import PING_IF_IDLE_S
from tests.conftest import _admin_sql

IDLE = PING_IF_IDLE_S + 0.3


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


def _count_pings(engine: AsyncEngine) -> list[int]:
    dialect = engine.sync_engine.dialect
    real = dialect.do_ping
    pings = [0]

    def counted(dbapi_connection: Any) -> bool:
        pings[0] += 1
        return bool(real(dbapi_connection))

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


async def test_no_ping_in_steady_use_and_one_after_idle(pg_database: str) -> None:
    engine = make_engine(pg_database)
    pings = _count_pings(engine)
    try:
        first = await _pid(engine)
        assert pings[0] == 1  # a new connection is checked once
        for _ in range(20):
            assert await _pid(engine) == first  # last in, first out: the same warm connection
        assert pings[0] == 1  # reused within the second: never pinged
        await asyncio.sleep(IDLE)
        assert await _pid(engine) == first
        assert pings[0] == 2  # idle for longer: pinged before use
    finally:
        await engine.dispose()


async def test_a_connection_that_died_while_idle_is_replaced_unseen(
    pg_url: str, pg_database: str
) -> None:
    engine = make_engine(pg_database)
    try:
        dead = await _pid(engine)
        await _admin_sql(pg_url, f"SELECT pg_terminate_backend({dead})")
        await asyncio.sleep(IDLE)
        assert await _pid(engine) != dead  # the ping found it dead; a new one was used
    finally:
        await engine.dispose()


async def test_a_connection_that_died_within_the_second_fails_once(
    pg_url: str, pg_database: str
) -> None:
    """The price of not pinging a busy connection (pool_ping.py): the statement that meets it
    fails (the call path fails closed), the pool is invalidated, and the next use works."""
    engine = make_engine(pg_database)
    try:
        dead = await _pid(engine)
        await _admin_sql(pg_url, f"SELECT pg_terminate_backend({dead})")
        await asyncio.sleep(0.1)  # the backend is gone, well within the idle second
        with pytest.raises(DBAPIError) as failed:
            await _pid(engine)
        assert failed.value.connection_invalidated
        assert await _pid(engine) != dead
    finally:
        await engine.dispose()
