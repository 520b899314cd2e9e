"""Alembic environment: async, for SQLite (aiosqlite) and PostgreSQL (asyncpg).

Three ways in:
- ``callcontrol.adapters.db.engine.upgrade()`` hands over an open connection in
  ``config.attributes["connection"]`` (and sets ``sqlalchemy.url``);
- the ``alembic`` command line with ``sqlalchemy.url`` set (``-x`` or a custom ini);
- the ``alembic`` command line without it: the URL comes from the callcontrol settings
  (``CALLCONTROL_CONFIG``, ``CALLCONTROL_DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from callcontrol.adapters.db.engine import database_url, make_engine, normalise_url, run_migrations
from callcontrol.adapters.db.tables import Base
from callcontrol.config import load_settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return normalise_url(url).render_as_string(hide_password=False)
    return database_url(load_settings())


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Write the SQL to standard output instead of running it (``alembic upgrade --sql``)."""
    url = _url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=normalise_url(url).get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # SQLite cannot ALTER most things: later migrations run as "batch" (copy and rename).
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await run_migrations(connection, do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
