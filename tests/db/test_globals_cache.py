"""The daemon's cache of the global numbers and tariffs (adapters/db/globals_cache.py) and its
version row (migration 0011), on SQLite and PostgreSQL: every change, whoever makes it, is in
use within a second; the cache fails closed when the database is gone too long."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from callcontrol.adapters.db.engine import (
    alembic_config,
    downgrade,
    make_engine,
    session_factory,
    upgrade,
)
from callcontrol.adapters.db.globals_cache import (
    CHANNEL,
    CachedGlobals,
    GlobalsStale,
    SqlGlobalsReader,
    globals_source,
)
from callcontrol.config import Settings
from callcontrol.domain.model import GlobalPolicy
from callcontrol.operator_services import operator_services
from tests.conftest import TESTER, _admin_sql
from tests.protocol.helpers import eventually

# What the cache promises: a committed change in use within a second (it checks every 0.5 s).
WITHIN_S = 1.0


@contextlib.asynccontextmanager
async def running(cache: CachedGlobals) -> AsyncIterator[CachedGlobals]:
    task = asyncio.create_task(cache.run())
    try:
        await eventually(lambda: cache.version is not None, within=10)
        yield cache
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def db_version(engine: AsyncEngine) -> int:
    return await SqlGlobalsReader(session_factory(engine)).version()


async def sql(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement))


async def test_every_change_to_either_table_bumps_the_version(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        seen = [await db_version(engine)]

        async def bumps(statement: str) -> int:
            await sql(engine, statement)
            seen.append(await db_version(engine))
            return seen[-1] - seen[-2]

        insert = "INSERT INTO global_numbers (number, policy, privileged, label, changed_by, "
        insert += "updated_at) VALUES ('116123', 'allowed', true, 'Samaritans', 'x', '2026-01-01')"
        assert await bumps(insert) >= 1
        assert await bumps("UPDATE global_numbers SET label = 'S'") >= 1
        assert await bumps("DELETE FROM global_numbers") >= 1
        assert await bumps("UPDATE tariffs SET rate = 311 WHERE destination_class = 'other'") >= 1
        assert await bumps("DELETE FROM tariffs WHERE destination_class = 'short'") >= 1
        insert = "INSERT INTO tariffs (destination_class, rate, updated_at, updated_by) "
        assert await bumps(insert + "VALUES ('short', 0, '2026-01-01', 'x')") >= 1
        # Other tables leave it alone, and so does a change rolled back.
        assert await bumps("UPDATE cells SET wing = 'B'") == 0
        async with engine.connect() as conn:
            await conn.execute(text("UPDATE tariffs SET rate = 1"))
            await conn.rollback()
        assert await db_version(engine) == seen[-1]
    finally:
        await engine.dispose()


async def test_changes_by_the_services_and_by_plain_sql_are_in_use_within_a_second(
    db_url: str, settings_for: Callable[..., Settings]
) -> None:
    engine = make_engine(db_url)
    ops = operator_services(settings_for(db_url), session_factory(engine))
    cache = globals_source(engine)
    try:
        async with running(cache):
            assert "116123" not in await cache.global_numbers()
            assert (await cache.tariffs())["uk_landline"].rate == 310

            async def seen(change: Awaitable[Any]) -> None:
                await change
                version = await db_version(engine)
                await eventually(lambda: cache.version == version, within=WITHIN_S)

            await seen(ops.numbers.allow(TESTER, "116123", privileged=True, label="Samaritans"))
            number = (await cache.global_numbers())["116123"]
            assert (number.policy, number.privileged) == (GlobalPolicy.ALLOWED, True)
            await seen(ops.accounts.set_tariff(TESTER, "uk_landline", 350, 200))
            landline = (await cache.tariffs())["uk_landline"]
            assert (landline.rate, landline.weekend_rate) == (350, 200)
            # An administrator's SQL, past every service.
            await seen(sql(engine, "UPDATE global_numbers SET policy = 'blocked'"))
            assert (await cache.global_numbers())["116123"].policy is GlobalPolicy.BLOCKED
            await seen(
                sql(engine, "UPDATE tariffs SET rate = 999 WHERE destination_class = 'other'")
            )
            assert (await cache.tariffs())["other"].rate == 999
            await seen(sql(engine, "DELETE FROM global_numbers"))
            assert await cache.global_numbers() == {}
    finally:
        await engine.dispose()


async def test_values_are_immutable_and_served_without_the_database(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    reader = SqlGlobalsReader(session_factory(engine))
    reads: list[str] = []

    class Counting:
        async def version(self) -> int:
            reads.append("version")
            return await reader.version()

        async def read(self) -> Any:
            reads.append("read")
            return await reader.read()

    cache = CachedGlobals(Counting())
    try:
        tariffs = await cache.tariffs()  # the first load
        for _ in range(50):
            assert await cache.tariffs() is tariffs
            await cache.global_numbers()
        assert reads == ["read"]
        with pytest.raises(TypeError):
            tariffs["uk_landline"] = tariffs["other"]  # type: ignore[index]
    finally:
        await engine.dispose()


# --- PostgreSQL: LISTEN/NOTIFY ---------------------------------------------------------------


async def test_notify_carries_the_new_version_at_commit(pg_database: str) -> None:
    engine = make_engine(pg_database)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    try:
        async with engine.connect() as listener:
            pg = (await listener.get_raw_connection()).driver_connection
            await pg.add_listener(CHANNEL, lambda *args: payloads.put_nowait(args[-1]))
            async with engine.connect() as conn:
                await conn.execute(text("UPDATE tariffs SET rate = 1"))
                await conn.rollback()  # never notified
            await sql(engine, "UPDATE tariffs SET rate = 2")
            assert int(await asyncio.wait_for(payloads.get(), 10)) == await db_version(engine)
            assert payloads.empty()
    finally:
        await engine.dispose()


async def test_notify_alone_reloads_and_survives_a_lost_connection(pg_database: str) -> None:
    """Polling an hour apart: only a notification can bring the change in. The listening
    connection killed by the server: it listens again and the next change is still seen."""
    engine = make_engine(pg_database)
    cache = globals_source(engine)
    cache.poll_s = cache.max_age_s = 3600.0
    try:
        async with running(cache):
            await sql(engine, "UPDATE tariffs SET rate = 500 WHERE destination_class = 'other'")
            version = await db_version(engine)
            await eventually(lambda: cache.version == version, within=10)
            assert (await cache.tariffs())["other"].rate == 500

            await sql(
                engine,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE query LIKE 'LISTEN%{CHANNEL}%' AND pid <> pg_backend_pid()",
            )
            await eventually_async(lambda: _listening(engine), within=10)  # RELISTEN_S
            await sql(engine, "DELETE FROM tariffs WHERE destination_class = 'short'")
            version = await db_version(engine)
            await eventually(lambda: cache.version == version, within=10)
            assert "short" not in await cache.tariffs()
    finally:
        await engine.dispose()


async def _listening(engine: AsyncEngine) -> bool:
    """Whether a connection listens on CHANNEL (a connection of its own each time: the
    server's activity view is a snapshot per transaction)."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE :q"),
            {"q": f"LISTEN%{CHANNEL}%"},
        )
    return bool(found)


async def eventually_async(predicate: Callable[[], Awaitable[bool]], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.05)


# --- the database gone: fail closed ----------------------------------------------------------


class Outage:
    """The database made unreachable for ``engine``, then brought back. SQLite: the file moved
    away (a new connection finds an empty database); PostgreSQL: no connection accepted."""

    def __init__(self, request: pytest.FixtureRequest, url: str, engine: AsyncEngine) -> None:
        self.request, self.url, self.engine = request, url, engine
        self.pg = make_url(url).get_backend_name() == "postgresql"
        self.path = Path(make_url(url).database or "")

    async def begin(self) -> None:
        if self.pg:
            name = make_url(self.url).database
            pg_url = self.request.getfixturevalue("pg_url")
            await _admin_sql(pg_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin_sql(
                pg_url,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
            )
        else:
            await self.engine.dispose()
            self.path.rename(self.path.with_name("away.sqlite3"))

    async def end(self) -> None:
        if self.pg:
            name = make_url(self.url).database
            pg_url = self.request.getfixturevalue("pg_url")
            await _admin_sql(pg_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        else:
            await self.engine.dispose()
            self.path.unlink(missing_ok=True)
            self.path.with_name("away.sqlite3").rename(self.path)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_last_good_values_served_up_to_the_bound_then_refused(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(db_url)
    clock = Clock()
    cache = CachedGlobals(SqlGlobalsReader(session_factory(engine)), max_age_s=5.0, clock=clock)
    outage = Outage(request, db_url, engine)
    try:
        tariffs = await cache.tariffs()
        await outage.begin()
        try:
            clock.now += 1
            with pytest.raises(Exception):  # noqa: B017 (whatever the driver raises)
                await cache.check()
            clock.now += 3.9  # 4.9 s after the last good check
            assert await cache.tariffs() is tariffs
            clock.now += 0.2
            with pytest.raises(GlobalsStale):
                await cache.tariffs()
            with pytest.raises(GlobalsStale):
                await cache.global_numbers()
        finally:
            await outage.end()
        assert await cache.check() is False  # the same version: nothing to reload
        assert await cache.tariffs() is tariffs
    finally:
        await engine.dispose()


async def test_running_cache_fails_closed_while_the_database_is_gone(
    db_url: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(db_url)
    cache = CachedGlobals(SqlGlobalsReader(session_factory(engine)), poll_s=0.1, max_age_s=1.0)
    outage = Outage(request, db_url, engine)

    async def refused() -> bool:
        try:
            await cache.global_numbers()
        except GlobalsStale:
            return True
        return False

    try:
        async with running(cache):
            assert not await refused()
            with caplog.at_level(logging.INFO, logger="callcontrol.globals_cache"):
                await outage.begin()
                try:
                    await eventually_async(refused, within=30)
                    await eventually(lambda: "every call is refused" in caplog.text, within=30)
                finally:
                    await outage.end()
                await eventually_async(lambda: _not(refused), within=30)
        logged = caplog.text
        assert "cannot check the global numbers and tariffs" in logged
        assert "every call is refused" in logged
        assert "the database answers again" in logged
    finally:
        await engine.dispose()


async def _not(predicate: Callable[[], Awaitable[bool]]) -> bool:
    return not await predicate()


# --- the migration -----------------------------------------------------------------------------


async def _triggers(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            q = "SELECT tgname || ' ON ' || tgrelid::regclass FROM pg_trigger"
            q += " WHERE NOT tgisinternal"
        else:
            q = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return {r[0] for r in (await conn.execute(text(q))).all() if "globals" in r[0]}


async def test_migration_downgrades_and_upgrades(db_url: str) -> None:
    before = ScriptDirectory.from_config(alembic_config()).get_revision("0011").down_revision
    engine = make_engine(db_url)
    try:
        assert len(await _triggers(engine)) in (2, 6)  # PostgreSQL: 2 tables; SQLite: 2 x 3
        await downgrade(db_url, str(before))
        await engine.dispose()
        assert await _triggers(engine) == set()
        await sql(engine, "UPDATE tariffs SET rate = 5")  # no trigger left to fail
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "globals_version" not in tables
        await upgrade(db_url)
        await engine.dispose()
        assert len(await _triggers(engine)) in (2, 6)
        assert await db_version(engine) == 1
        await sql(engine, "UPDATE tariffs SET rate = 6")
        assert await db_version(engine) > 1
    finally:
        await engine.dispose()
