"""The migrations create exactly the tables of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    DatabaseUnavailable,
    SchemaNotCurrent,
    check_schema_current,
    current_revision,
    database_url,
    downgrade,
    head_revision,
    make_engine,
    session_factory,
    upgrade,
)
from callcontrol.config import ConfigError, DatabaseSettings, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _differences(conn: Connection) -> list[Any]:
    # SQLite reflects a server default of '' in a form Alembic cannot compare: defaults are
    # compared on PostgreSQL only.
    opts = {"compare_type": True, "compare_server_default": conn.dialect.name == "postgresql"}
    return compare_metadata(MigrationContext.configure(conn, opts=opts), m.Base.metadata)


async def test_schema_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert tables == set(m.Base.metadata.tables) | {"alembic_version"}


async def test_schema_is_current_after_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await check_schema_current(engine)
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
    await upgrade(db_url)  # again: nothing to do


async def test_downgrade_then_upgrade(db_url: str) -> None:
    await downgrade(db_url, "base")
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        with pytest.raises(SchemaNotCurrent, match=r"run `callcontrol db upgrade`"):
            await check_schema_current(engine)
        await upgrade(db_url)
        await check_schema_current(engine)
    finally:
        await engine.dispose()


async def test_empty_database_is_not_current(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/new/empty.sqlite3")
    try:
        with pytest.raises(SchemaNotCurrent) as caught:
            await check_schema_current(engine)
    finally:
        await engine.dispose()
    assert str(caught.value).startswith(
        "database is not at the latest schema: run `callcontrol db upgrade`"
    )
    assert (tmp_path / "new").is_dir()  # the folder of the file is made


async def test_unreachable_database() -> None:
    engine = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(DatabaseUnavailable, match="unreachable"):
            await check_schema_current(engine)
    finally:
        await engine.dispose()
    with pytest.raises(DatabaseUnavailable):
        await upgrade("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")


async def _call(session_maker: Any, prisoner_id: int, cell_id: int, n: int) -> None:
    async with session_maker() as s:
        decision = m.CallDecision(
            handset="A1", dialled="0", outcome="allow", reason="approved_contact", cell_id=cell_id
        )
        s.add(decision)
        await s.flush()
        s.add(
            m.Call(
                decision_id=decision.id,
                prisoner_id=prisoner_id,
                cell_id=cell_id,
                number="+442079460000",
                channel=f"PJSIP/A1-{n}",
                uniqueid=f"u{n}",
            )
        )
        await s.commit()


async def test_one_active_call_per_prisoner(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as s:
            cell = m.Cell(name="A1", sip_username="A1", sip_md5_cred="0" * 32, enabled=True)
            s.add(cell)
            await s.flush()
            prisoner = m.Prisoner(prison_number="P1", name="P", pin_hash="h1$x", cell_id=cell.id)
            s.add(prisoner)
            await s.commit()
        await _call(sessions, prisoner.id, cell.id, 1)
        with pytest.raises(IntegrityError):
            await _call(sessions, prisoner.id, cell.id, 2)
        async with sessions() as s:
            await s.execute(text("UPDATE calls SET ended_at = :t"), {"t": datetime.now(UTC)})
            await s.commit()
        await _call(sessions, prisoner.id, cell.id, 3)  # the first has ended
    finally:
        await engine.dispose()


async def test_foreign_keys_enforced(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with session_factory(engine)() as s:
            s.add(m.Prisoner(prison_number="P1", name="P", pin_hash="h1$x", cell_id=12345))
            with pytest.raises(IntegrityError):
                await s.commit()
    finally:
        await engine.dispose()


async def test_times_come_back_utc(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with session_factory(engine)() as s:
            s.add(m.Cell(name="A1", sip_username="A1", sip_md5_cred="0" * 32, enabled=True))
            await s.commit()
        async with session_factory(engine)() as s:
            cell = await s.scalar(select(m.Cell))
        assert cell is not None and cell.created_at.tzinfo is UTC
        assert abs((datetime.now(UTC) - cell.created_at).total_seconds()) < 60
    finally:
        await engine.dispose()


def test_database_url_relative_sqlite_is_under_base_dir(tmp_path: Path) -> None:
    settings = Settings(
        database=DatabaseSettings(url="sqlite+aiosqlite:///var/cc.sqlite3"), base_dir=tmp_path
    )
    assert database_url(settings) == f"sqlite+aiosqlite:///{tmp_path}/var/cc.sqlite3"
    absolute = Settings(database=DatabaseSettings(url="sqlite:////srv/cc.sqlite3"))
    assert database_url(absolute) == "sqlite+aiosqlite:////srv/cc.sqlite3"
    pg = Settings(database=DatabaseSettings(url="postgresql://u:p@db/cc"))
    assert database_url(pg) == "postgresql+asyncpg://u:p@db/cc"


@pytest.mark.parametrize("url", ["nonsense", "mysql+aiomysql://u@h/db", "postgresql+nope://h/d"])
def test_bad_database_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        asyncio.run(make_engine(url).dispose())


async def test_sqlite_connection_settings(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
            assert await conn.scalar(text("PRAGMA busy_timeout")) == SQLITE_BUSY_TIMEOUT_MS
    finally:
        await engine.dispose()


async def test_unknown_revision(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
        with pytest.raises(SchemaNotCurrent, match="unknown to this version"):
            await check_schema_current(engine)
    finally:
        await engine.dispose()


def test_alembic_command_line_takes_the_url_from_the_settings(tmp_path: Path) -> None:
    """`alembic upgrade head` in the repository, the URL from CALLCONTROL_DATABASE_URL."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}
    env["CALLCONTROL_DATABASE_URL"] = url
    for argv in (["upgrade", "head"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-m", "alembic", *argv],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert asyncio.run(_revision(url)) == head_revision()


async def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()
