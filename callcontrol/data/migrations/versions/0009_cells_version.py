"""A version counter for the cells' handsets, bumped by the database itself.

Revision ID: 0009
Revises: 0008

New table cells_version (its one row, id 1: version) and triggers on cells that add one to it
whenever a handset's endpoint can change: a cell added or removed, or its SIP username, realm,
digest credential or enabled flag updated. The bump is in the same transaction as the change,
whichever program made it (the CLI, the HTTP API, a load's provisioning, plain SQL), so the
daemon, polling that one row, sees every change once it is committed and rewrites the cells'
PJSIP endpoints (services/cells_sync.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns an endpoint is rendered from (adapters/asterisk/pjsip_cells.py).
ENDPOINT_COLUMNS = "sip_username, sip_realm, sip_md5_cred, enabled"
BUMP = "UPDATE cells_version SET version = version + 1 WHERE id = 1"

PG_TRIGGERS = (
    f"""
    CREATE FUNCTION cells_version_bump() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        {BUMP};
        RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE TRIGGER cells_version_on_change
    AFTER INSERT OR DELETE OR UPDATE OF {ENDPOINT_COLUMNS} ON cells
    FOR EACH STATEMENT EXECUTE FUNCTION cells_version_bump()
    """,
)

SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER cells_version_on_{name} AFTER {event} ON cells BEGIN {BUMP}; END"
    for name, event in (
        ("insert", "INSERT"),
        ("delete", "DELETE"),
        ("update", f"UPDATE OF {ENDPOINT_COLUMNS}"),
    )
)


def upgrade() -> None:
    table = op.create_table(
        "cells_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cells_version")),
        sa.CheckConstraint("id = 1", name=op.f("ck_cells_version_one_row")),
    )
    op.bulk_insert(table, [{"id": 1, "version": 1}])
    dialect = op.get_context().dialect.name
    for statement in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER cells_version_on_change ON cells")
        op.execute("DROP FUNCTION cells_version_bump()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER cells_version_on_{name}")
    op.drop_table("cells_version")
