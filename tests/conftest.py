"""Fixtures shared by the whole suite: a PostgreSQL server of our own, fresh databases, settings.

PostgreSQL: with CALLCONTROL_TEST_DATABASE_URL set (an asyncpg URL whose user may create
databases), that server is used. Otherwise the session starts its own from the Debian
``postgresql`` package's binaries (``/usr/lib/postgresql/*/bin``): a throw-away cluster in a
temporary folder, trust authentication, listening on 127.0.0.1 only, on a free port; it is
stopped and removed when the session ends.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from callcontrol.adapters.db.engine import normalise_url, upgrade
from callcontrol.config import DatabaseSettings, SecuritySettings, Settings, with_overrides
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol_lab.devtools.postgres import PG_NOT_FOUND
from callcontrol_lab.devtools.postgres import LocalPostgres as _LocalPostgres
from callcontrol_lab.devtools.postgres import pg_bindir as _pg_bindir

TEST_PIN_SECRET = "test-pin-secret-0123456789abcdef"
TESTER = Actor("test", OPERATOR)  # who sets a test's world up through the services


def _say(config: pytest.Config, message: str) -> None:
    """Print past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(message)
        return
    with capture.global_and_fixture_disabled():
        if getattr(reporter._tw, "width_of_current_line", 0):
            reporter.write_line("")
        reporter.write_line(message)


@pytest.fixture(scope="session")
def pg_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """An asyncpg URL of a PostgreSQL server on which the tests may create databases."""
    given = os.environ.get("CALLCONTROL_TEST_DATABASE_URL")
    if given:
        given = normalise_url(given).render_as_string(hide_password=False)
        _say(pytestconfig, f"PostgreSQL for the tests: {make_url(given)!r} (from the environment)")
        yield given
        return
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(PG_NOT_FOUND, pytrace=False)
    try:
        server = _LocalPostgres(bindir)
    except KeyError:
        pytest.fail("running as root, but there is no postgres user to run PostgreSQL as")
    try:
        server.start()
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        server.stop()
        pytest.fail(f"could not start PostgreSQL from {bindir}: {e}", pytrace=False)
    _say(
        pytestconfig,
        f"PostgreSQL for the tests: {server.url} (data in {server.data}, log {server.log})",
    )
    try:
        yield server.url
    finally:
        server.stop()


def _on(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _admin_sql(pg_url: str, sql: str) -> None:
    engine = create_async_engine(
        _on(pg_url, "postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def create_pg_database(pg_url: str, migrate: bool = True) -> str:
    """A new, uniquely named database on the server (at the latest schema unless not
    ``migrate``); returns its URL. Synchronous: usable from any fixture or test."""
    name = f"cc_test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin_sql(pg_url, f'CREATE DATABASE "{name}"'))
    url = _on(pg_url, name)
    if migrate:
        asyncio.run(upgrade(url))
    return url


def drop_pg_database(pg_url: str, url: str) -> None:
    name = make_url(url).database
    try:  # FORCE (PostgreSQL 13+) ends connections a failed test may have left open
        asyncio.run(_admin_sql(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except DBAPIError:
        asyncio.run(_admin_sql(pg_url, f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database at the latest schema, for one test; dropped after it."""
    url = create_pg_database(pg_url)
    try:
        yield url
    finally:
        drop_pg_database(pg_url, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file at the latest schema, for one test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'callcontrol.sqlite3'}"
    asyncio.run(upgrade(url))
    return url


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """``settings_for(url, site={...}, ...)``: Settings on that database, with a PIN secret,
    base_dir the test's tmp_path, and any other sections overridden."""

    def make(url: str, **sections: dict[str, Any]) -> Settings:
        settings = Settings(
            database=DatabaseSettings(url=url),
            security=SecuritySettings(pin_secret=TEST_PIN_SECRET),
            base_dir=tmp_path,
        )
        return with_overrides(settings, **sections) if sections else settings

    return make
