"""A version counter for the global numbers and the tariffs, bumped by the database itself.

Revision ID: 0011
Revises: 0010

New table globals_version (its one row, id 1: version) and triggers on global_numbers and
tariffs that add one to it on every insert, update or delete (and truncate, on PostgreSQL).
The bump is in the same transaction as the change, whichever program made it (the CLI, the
HTTP API, the console, plain SQL by an administrator), so the daemon's cache of the two tables
(adapters/db/globals_cache.py), polling that one row, sees every change once it is committed.
On PostgreSQL the trigger also sends NOTIFY callcontrol_globals with the new version, delivered
at commit (never for a rolled-back change), so a listening daemon reloads at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables the daemon caches, and the channel it listens on (globals_cache.CHANNEL).
TABLES = ("global_numbers", "tariffs")
CHANNEL = "callcontrol_globals"
BUMP = "UPDATE globals_version SET version = version + 1 WHERE id = 1"

PG_FUNCTION = f"""
    CREATE FUNCTION globals_version_bump() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        bumped bigint;
    BEGIN
        {BUMP} RETURNING version INTO bumped;
        PERFORM pg_notify('{CHANNEL}', bumped::text);
        RETURN NULL;
    END
    $$
    """
PG_TRIGGERS = tuple(
    f"""
    CREATE TRIGGER globals_version_on_change
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION globals_version_bump()
    """
    for table in TABLES
)
SQLITE_EVENTS = ("insert", "update", "delete")
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER globals_version_on_{table}_{event} AFTER {event.upper()} ON {table} "
    f"BEGIN {BUMP}; END"
    for table in TABLES
    for event in SQLITE_EVENTS
)


def upgrade() -> None:
    table = op.create_table(
        "globals_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_globals_version")),
        sa.CheckConstraint("id = 1", name=op.f("ck_globals_version_one_row")),
    )
    op.bulk_insert(table, [{"id": 1, "version": 1}])
    if op.get_context().dialect.name == "postgresql":
        for statement in (PG_FUNCTION, *PG_TRIGGERS):
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER globals_version_on_change ON {table}")
        op.execute("DROP FUNCTION globals_version_bump()")
    else:
        for table in TABLES:
            for event in SQLITE_EVENTS:
                op.execute(f"DROP TRIGGER globals_version_on_{table}_{event}")
    op.drop_table("globals_version")
