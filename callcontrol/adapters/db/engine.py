"""Opening the database, and bringing its schema up to date with the migrations.

The same code serves SQLite (``sqlite+aiosqlite:///path``, the embedded default) and PostgreSQL
(``postgresql+asyncpg://user@host/db``, production). Schema changes are made only by the Alembic
migrations in ``migrations/`` (``callcontrol db upgrade``); the daemon and the operator commands
refuse to work on a database that is not at the latest revision.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from callcontrol import private_files
from callcontrol.adapters.db.pool_ping import ping_when_idle
from callcontrol.config import ConfigError, Settings
from callcontrol.resources import migrations_dir

# SQLite: how long a writer waits for another one's lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 5000
# PostgreSQL: how long to wait for a connection to the server (seconds).
PG_CONNECT_TIMEOUT_S = 10

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


class DatabaseError(Exception):
    """The database cannot be used: unreachable, or its schema is not the one this code needs."""


class DatabaseUnavailable(DatabaseError):
    """The database server (or file) could not be reached."""


class SchemaNotCurrent(DatabaseError):
    """The database schema is not at the latest migration."""


def normalise_url(url: str | URL) -> URL:
    """The URL with an async driver: ``postgresql://`` means asyncpg, ``sqlite://`` aiosqlite."""
    try:
        u = make_url(url)
    except ArgumentError as e:
        raise ConfigError(f"[database] url is not a database URL: {e}") from None
    if u.drivername in _ASYNC_DRIVERS:
        u = u.set(drivername=_ASYNC_DRIVERS[u.drivername])
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"[database] url: unsupported database {u.get_backend_name()!r} "
            "(use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB)"
        )
    return u


def _sqlite_file(u: URL) -> str | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    db = u.database or ""
    if db in ("", ":memory:") or db.startswith("file:") or u.query.get("mode") == "memory":
        return None
    return db


def database_url(settings: Settings) -> str:
    """The database URL of the settings, a relative SQLite file taken from ``base_dir``."""
    u = normalise_url(settings.database.url)
    if u.get_backend_name() == "sqlite":
        db = _sqlite_file(u)
        if db is not None and not Path(db).expanduser().is_absolute():
            u = u.set(database=str(settings.path(db)))
    return u.render_as_string(hide_password=False)


def redact(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _private_sqlite(db: Path) -> None:
    """The database file made 0600 (in a 0700 folder) before SQLite opens it: SQLite would
    make it 0644 less the umask, and makes its -wal and -shm with the database file's mode.
    One too open already is tightened, and the log says so."""
    private_files.create_file(db)
    for suffix in ("-wal", "-shm", "-journal"):
        private_files.tighten(db.with_name(db.name + suffix))


def make_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (SQLite or PostgreSQL); see the module documentation.

    SQLite: the file (and its folder) is created private if missing (_private_sqlite); foreign
    keys are enforced and a writer waits up to SQLITE_BUSY_TIMEOUT_MS for a lock. PostgreSQL: a
    pool whose connections are checked before use when they have been idle (pool_ping.py).
    Extra keyword arguments go to ``create_async_engine``.
    """
    u = normalise_url(url)
    options: dict[str, Any] = {}
    if u.get_backend_name() == "sqlite":
        db = _sqlite_file(u)
        if db is not None:
            _private_sqlite(Path(db).expanduser())
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        options.update(
            # The daemon holds a connection only for one step of a call, but many calls are
            # decided at once: a pool smaller than that opened and closed connections
            # constantly (with 20 kept: 330 to 360 new connections per 2,000 decisions at 50
            # in flight in the micro-benchmark; none with 50 kept).
            pool_size=50,
            max_overflow=10,
            # Checked before use only after a second idle (pool_ping.py), not at every
            # checkout: SQLAlchemy's pre-ping is three round trips a checkout on asyncpg.
            # Last in, first out: the connections in use stay warm, the rest go idle and
            # are checked when next taken.
            pool_pre_ping=False,
            pool_use_lifo=True,
            pool_recycle=1800,
            connect_args={"timeout": PG_CONNECT_TIMEOUT_S},
        )
    if "poolclass" in kwargs:  # e.g. NullPool, which has no size and no order
        options.pop("pool_size", None)
        options.pop("max_overflow", None)
        options.pop("pool_use_lifo", None)
    options.update(kwargs)
    try:
        engine = create_async_engine(u, **options)
    except (ArgumentError, InvalidRequestError, ImportError) as e:
        raise ConfigError(f"[database] url {redact(u)}: {e}") from None
    if u.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    elif not options.get("pool_pre_ping") and options.get("poolclass") is not NullPool:
        # (a NullPool's connections are new at every checkout: nothing to check)
        ping_when_idle(engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``; objects stay readable after commit (no lazy reload in async)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration for the repository's migrations (and ``url``, if given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        # configparser interpolation: a literal "%" (URL-encoded password) is written "%%".
        rendered = normalise_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The latest revision of the migrations."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads, expected one: {heads}")
    return heads[0]


def _reason(e: BaseException) -> str:
    inner = getattr(e, "orig", None) or e
    text = str(inner).strip() or type(inner).__name__
    return " ".join(text.split())


def _run_alembic(connection: Connection, cfg: Config, revision: str, down: bool) -> None:
    cfg.attributes["connection"] = connection
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations on ``url`` up to ``revision`` (Alembic ``upgrade head``)."""
    await _migrate(url, revision, down=False)


async def downgrade(url: str, revision: str) -> None:
    """Undo the migrations on ``url`` down to ``revision`` ("base": an empty database)."""
    await _migrate(url, revision, down=True)


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    """A connection, or DatabaseUnavailable saying why there is none."""
    try:
        return await engine.connect()
    except Exception as e:
        if isinstance(e, OSError | TimeoutError | DBAPIError):
            raise DatabaseUnavailable(
                f"database {redact(engine.url)} is unreachable: {_reason(e)}"
            ) from e
        raise


async def run_migrations(conn: AsyncConnection, migrate: Callable[[Connection], None]) -> None:
    """Run ``migrate`` (Alembic, on the sync connection) in one transaction, then commit.

    On SQLite, foreign keys are not enforced meanwhile (batch migrations copy and drop tables),
    and are checked afterwards: a migration that leaves a dangling reference fails.
    """
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # not inside a transaction, where SQLite ignores it
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
    try:
        async with conn.begin():
            await conn.run_sync(migrate)
            if sqlite:
                bad = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if bad:
                    raise DatabaseError(f"the migration leaves broken references: {bad[:5]}")
    finally:
        if sqlite:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


async def _migrate(url: str, revision: str, down: bool) -> None:
    cfg = alembic_config(url)
    engine = make_engine(url)
    try:
        conn = await _connect(engine)
        try:
            await run_migrations(conn, lambda c: _run_alembic(c, cfg, revision, down))
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    conn = await _connect(engine)
    try:
        heads = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
    finally:
        await conn.close()
    return heads[0] if heads else None


async def check_schema_current(engine: AsyncEngine) -> None:
    """Raise SchemaNotCurrent unless the database is at the latest migration.

    Raises DatabaseUnavailable when the database cannot be reached.
    """
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        detail = "it has no schema yet"
    else:
        try:
            known = ScriptDirectory.from_config(alembic_config()).get_revision(current) is not None
        except CommandError:
            known = False
        detail = (
            f"it is at revision {current}, the latest is {head}"
            if known
            else f"it is at revision {current}, unknown to this version of callcontrol"
        )
    raise SchemaNotCurrent(
        f"database is not at the latest schema: run `callcontrol db upgrade` ({detail})"
    )
