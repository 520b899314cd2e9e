"""Billing: accounts, the append-only ledger, reservations, tariffs; call settlement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

New tables accounts, ledger_entries, reservations and tariffs (seeded with the default
tariffs); settlement columns on calls; a per-prisoner and a per-contact call length limit.
Triggers make ledger_entries append-only: the database refuses any UPDATE or DELETE of it
(and, on PostgreSQL, TRUNCATE).

Written out in full rather than imported from the models (see 0001).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The default tariffs when this migration was written (domain/tariffs.py DEFAULT_TARIFFS),
# copied as literals so that the migration stays what it was: (destination class, rate,
# weekend rate), rates in hundredths of a penny per minute.
DEFAULT_TARIFFS = (
    ("uk_landline", 310, None),
    ("uk_mobile", 688, None),
    ("international", 2500, None),
    ("short", 0, None),
    ("other", 688, None),
)

APPEND_ONLY = "ledger_entries is append-only"

PG_TRIGGERS = (
    f"""
    CREATE FUNCTION ledger_entries_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY}: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()
    """,
    """
    CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()
    """,
)

SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: DELETE refused'); END
    """,
)


def _id() -> sa.Column:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _ref(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int | None, default: str | None = None) -> sa.Column:
    kind = sa.Text() if length is None else sa.String(length=length)
    return sa.Column(name, kind, server_default=default, nullable=False)


def _int(name: str, nullable: bool = False, default: str | None = None) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable, server_default=default)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    name = op.f(f"fk_{table}_{column}_{target.split('.')[0]}")
    return sa.ForeignKeyConstraint([column], [target], name=name)


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def upgrade() -> None:
    op.create_table(
        "accounts",
        _ref("prisoner_id", nullable=False),
        _int("balance_pence", default="0"),
        _int("reserved_pence", default="0"),
        _time("updated_at"),
        _fk("prisoner_id", "accounts", "prisoners.id"),
        sa.PrimaryKeyConstraint("prisoner_id", name=op.f("pk_accounts")),
        _check("accounts", "balance_not_negative", "balance_pence >= 0"),
        _check(
            "accounts",
            "reserved_within",
            "reserved_pence >= 0 AND reserved_pence <= balance_pence",
        ),
    )
    op.create_table(
        "ledger_entries",
        _id(),
        _ref("prisoner_id", nullable=False),
        _text("kind", 16),
        _int("amount_pence"),
        _int("balance_after"),
        _text("idempotency_key", 200),
        _text("reference", None, ""),
        _ref("call_id", nullable=True),
        _time("created_at"),
        _text("created_by", 100),
        _fk("prisoner_id", "ledger_entries", "prisoners.id"),
        _fk("call_id", "ledger_entries", "calls.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_entries_idempotency_key")),
        _check("ledger_entries", "kind", "kind IN ('topup', 'charge', 'refund', 'adjustment')"),
        _check(
            "ledger_entries",
            "amount_sign",
            "(kind IN ('topup', 'refund') AND amount_pence > 0)"
            " OR (kind = 'charge' AND amount_pence < 0)"
            " OR (kind = 'adjustment' AND amount_pence <> 0)",
        ),
        _check("ledger_entries", "balance_after_not_negative", "balance_after >= 0"),
    )
    op.create_index(op.f("ix_ledger_entries_prisoner_id"), "ledger_entries", ["prisoner_id"])
    op.create_index(op.f("ix_ledger_entries_call_id"), "ledger_entries", ["call_id"])

    op.create_table(
        "reservations",
        _id(),
        _ref("prisoner_id", nullable=False),
        _ref("call_id", nullable=False),
        _int("amount_pence"),
        _int("max_seconds"),
        _int("rate"),
        _text("destination_class", 32),
        _text("rounding", 32),
        sa.Column("free", sa.Boolean(), nullable=False),
        _text("status", 16, "open"),
        _time("created_at"),
        _time("closed_at", nullable=True),
        _fk("prisoner_id", "reservations", "prisoners.id"),
        _fk("call_id", "reservations", "calls.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.UniqueConstraint("call_id", name=op.f("uq_reservations_call_id")),
        _check("reservations", "amount_not_negative", "amount_pence >= 0"),
        _check("reservations", "max_seconds_not_negative", "max_seconds >= 0"),
        _check("reservations", "rate_not_negative", "rate >= 0"),
        _check("reservations", "status", "status IN ('open', 'settled', 'released')"),
    )
    op.create_index("ix_reservations_prisoner_id_status", "reservations", ["prisoner_id", "status"])

    tariffs = op.create_table(
        "tariffs",
        _text("destination_class", 32),
        _int("rate"),
        _int("weekend_rate", nullable=True),
        _time("updated_at"),
        _text("updated_by", 100, ""),
        sa.PrimaryKeyConstraint("destination_class", name=op.f("pk_tariffs")),
        _check("tariffs", "rate_not_negative", "rate >= 0"),
        _check("tariffs", "weekend_rate_not_negative", "weekend_rate IS NULL OR weekend_rate >= 0"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        tariffs,
        [
            {
                "destination_class": cls,
                "rate": rate,
                "weekend_rate": weekend,
                "updated_at": now,
                "updated_by": "migration 0002",
            }
            for cls, rate, weekend in DEFAULT_TARIFFS
        ],
    )

    # Plain ADD COLUMN (nullable, or NOT NULL with a default) works on both backends.
    for column in (
        _time("answered_at", nullable=True),
        _int("talk_seconds", nullable=True),
        _text("dial_status", 32, ""),
        _text("disconnect_cause", 64, ""),
        _text("ended_by", 16, ""),
        _int("charge_pence", nullable=True),
        _time("settled_at", nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=True),
    ):
        op.add_column("calls", column)
    op.add_column("prisoners", _int("max_call_s", nullable=True))
    op.add_column("contacts", _int("max_call_s", nullable=True))

    dialect = op.get_context().dialect.name
    for statement in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    # Dropping a table drops its triggers and indexes too.
    for table in ("tariffs", "reservations", "ledger_entries", "accounts"):
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_entries_append_only()")
    op.drop_column("contacts", "max_call_s")
    op.drop_column("prisoners", "max_call_s")
    for column in (
        "accepted",
        "settled_at",
        "charge_pence",
        "ended_by",
        "disconnect_cause",
        "dial_status",
        "talk_seconds",
        "answered_at",
    ):
        op.drop_column("calls", column)
