"""Recordings: the store's rows, their hash chain, missing recordings, the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

New tables recordings, recording_chain, recording_chain_head (its one row: an empty chain),
missing_recordings and audit_log. Triggers make recording_chain and audit_log append-only (no
UPDATE, DELETE or, on PostgreSQL, TRUNCATE), forbid deleting a recording or the chain head, and
allow only one change to a recording: setting purged_at, once.

Written out in full rather than imported from the models (see 0001).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
APPEND_ONLY = ("recording_chain", "audit_log")

PG_TRIGGERS = (
    """
    CREATE FUNCTION recordings_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    *(
        statement
        for table in APPEND_ONLY
        for statement in (
            f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION recordings_append_only()
            """,
            f"""
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION recordings_append_only()
            """,
        )
    ),
    """
    CREATE TRIGGER recording_chain_head_no_delete
    BEFORE DELETE OR TRUNCATE ON recording_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION recordings_append_only()
    """,
    """
    CREATE FUNCTION recordings_only_purge() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
           AND to_jsonb(NEW) - 'purged_at' = to_jsonb(OLD) - 'purged_at' THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'recordings: % refused (only marking a recording purged is allowed)',
            TG_OP USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER recordings_only_purge BEFORE UPDATE OR DELETE ON recordings
    FOR EACH ROW EXECUTE FUNCTION recordings_only_purge()
    """,
    """
    CREATE TRIGGER recordings_no_truncate BEFORE TRUNCATE ON recordings
    FOR EACH STATEMENT EXECUTE FUNCTION recordings_append_only()
    """,
)

# Every column of recordings but purged_at: none of them may change.
RECORDING_COLUMNS = (
    "id, call_id, prisoner_id, cell_id, number, started_at, duration_ms, channels, codec, "
    "sample_rate, bytes, sha256, file_name, ingested_at, prev_entry_hash, entry_hash"
)

SQLITE_TRIGGERS = (
    *(
        f"""
        CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op_name} refused'); END
        """
        for table in APPEND_ONLY
        for op_name in ("UPDATE", "DELETE")
    ),
    """
    CREATE TRIGGER recording_chain_head_no_delete BEFORE DELETE ON recording_chain_head
    BEGIN SELECT RAISE(ABORT, 'recording_chain_head: DELETE refused'); END
    """,
    """
    CREATE TRIGGER recordings_no_delete BEFORE DELETE ON recordings
    BEGIN SELECT RAISE(ABORT,
        'recordings: DELETE refused (only marking a recording purged is allowed)'); END
    """,
    f"""
    CREATE TRIGGER recordings_no_update BEFORE UPDATE OF {RECORDING_COLUMNS} ON recordings
    BEGIN SELECT RAISE(ABORT,
        'recordings: UPDATE refused (only marking a recording purged is allowed)'); END
    """,
    """
    CREATE TRIGGER recordings_purge_once BEFORE UPDATE OF purged_at ON recordings
    WHEN OLD.purged_at IS NOT NULL OR NEW.purged_at IS NULL
    BEGIN SELECT RAISE(ABORT,
        'recordings: UPDATE refused (only marking a recording purged is allowed)'); END
    """,
)


def _id() -> sa.Column:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _ref(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int | None, default: str | None = None) -> sa.Column:
    kind = sa.Text() if length is None else sa.String(length=length)
    return sa.Column(name, kind, server_default=default, nullable=False)


def _int(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_{column}_{target.split('.')[0]}")
    return sa.ForeignKeyConstraint([column], [target], name=name)


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def _unique(table: str, column: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(column, name=op.f(f"uq_{table}_{column}"))


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "recordings",
        _id(),
        _ref("call_id"),
        _ref("prisoner_id"),
        _ref("cell_id"),
        _text("number", 32),
        _time("started_at"),
        _int("duration_ms"),
        _int("channels"),
        _text("codec", 16),
        _int("sample_rate"),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        _text("sha256", 64),
        _text("file_name", 80),
        _time("ingested_at"),
        _text("prev_entry_hash", 64),
        _text("entry_hash", 64),
        _time("purged_at", nullable=True),
        _fk("call_id", "recordings", "calls.id"),
        _fk("prisoner_id", "recordings", "prisoners.id"),
        _fk("cell_id", "recordings", "cells.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        _unique("recordings", "call_id"),
        _unique("recordings", "entry_hash"),
        _check("recordings", "channels_positive", "channels >= 1"),
        _check("recordings", "duration_not_negative", "duration_ms >= 0"),
        _check("recordings", "bytes_positive", "bytes > 0"),
    )
    _index("recordings", "prisoner_id")
    _index("recordings", "started_at")

    op.create_table(
        "recording_chain",
        _id(),
        _text("kind", 16),
        _ref("recording_id"),
        _text("body", None),
        _text("prev_hash", 64),
        _text("entry_hash", 64),
        _time("at"),
        _fk("recording_id", "recording_chain", "recordings.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_chain")),
        _unique("recording_chain", "prev_hash"),
        _unique("recording_chain", "entry_hash"),
        _check("recording_chain", "kind", "kind IN ('recording', 'deletion')"),
    )
    _index("recording_chain", "recording_id")

    head = op.create_table(
        "recording_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entries", sa.BigInteger(), server_default="0", nullable=False),
        _text("entry_hash", 64),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_chain_head")),
        _check("recording_chain_head", "one_row", "id = 1"),
    )
    op.bulk_insert(
        head, [{"id": 1, "entries": 0, "entry_hash": GENESIS, "updated_at": datetime.now(UTC)}]
    )

    op.create_table(
        "missing_recordings",
        _id(),
        _ref("call_id"),
        _time("detected_at"),
        _text("why", None),
        _time("resolved_at", nullable=True),
        _fk("call_id", "missing_recordings", "calls.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missing_recordings")),
        _unique("missing_recordings", "call_id"),
    )

    op.create_table(
        "audit_log",
        _id(),
        _time("at"),
        _text("actor", 100),
        _text("role", 32),
        _text("action", 32),
        _text("target", 200),
        _text("reason", None, ""),
        _text("detail", None, ""),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    _index("audit_log", "at")
    _index("audit_log", "action")

    dialect = op.get_context().dialect.name
    for statement in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    # Dropping a table drops its triggers and indexes too.
    for table in (
        "audit_log",
        "missing_recordings",
        "recording_chain_head",
        "recording_chain",
        "recordings",
    ):
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION recordings_only_purge()")
        op.execute("DROP FUNCTION recordings_append_only()")
