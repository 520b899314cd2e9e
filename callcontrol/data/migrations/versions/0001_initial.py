"""Initial schema.

Cells, prisoners, contacts and their history, global numbers, PIN failures, call decisions and
calls.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written out in full rather than imported from the models, so that it stays what it was when
the models change. Times are DateTime(timezone=True) (the models' UtcDateTime stores exactly
that). Ids are BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def upgrade() -> None:
    op.create_table(
        "cells",
        _id(),
        _text("name", 32),
        _text("wing", 32, ""),
        _text("sip_username", 64),
        _text("sip_password", 128),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _text("disabled_reason", None, ""),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cells")),
        sa.UniqueConstraint("name", name=op.f("uq_cells_name")),
        sa.UniqueConstraint("sip_username", name=op.f("uq_cells_sip_username")),
    )
    op.create_table(
        "global_numbers",
        _id(),
        _text("number", 32),
        _text("policy", 16),
        sa.Column("privileged", sa.Boolean(), nullable=False),
        _text("label", 200, ""),
        _text("changed_by", 100, ""),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_global_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_global_numbers_number")),
    )
    op.create_table(
        "prisoners",
        _id(),
        _text("prison_number", 32),
        _text("name", 200),
        _text("pin_hash", 128),
        _ref("cell_id", nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _text("suspended_reason", None, ""),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["cell_id"], ["cells.id"], name=op.f("fk_prisoners_cell_id_cells")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prisoners")),
        sa.UniqueConstraint("prison_number", name=op.f("uq_prisoners_prison_number")),
    )
    op.create_index(op.f("ix_prisoners_cell_id"), "prisoners", ["cell_id"])

    op.create_table(
        "call_decisions",
        _id(),
        _time("at"),
        _text("handset", 64),
        _ref("cell_id", nullable=True),
        _ref("prisoner_id", nullable=True),
        _text("dialled", 64),
        sa.Column("number", sa.String(length=32), nullable=True),
        _text("outcome", 16),
        _text("reason", 32),
        _text("detail", None, ""),
        sa.Column("privileged", sa.Boolean(), nullable=False),
        _text("channel", 128, ""),
        _text("uniqueid", 64, ""),
        _text("sip_call_id", 255, ""),
        sa.Column("decision_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_call_decisions_cell_id_cells")
        ),
        sa.ForeignKeyConstraint(
            ["prisoner_id"], ["prisoners.id"], name=op.f("fk_call_decisions_prisoner_id_prisoners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_decisions")),
    )
    op.create_index(op.f("ix_call_decisions_at"), "call_decisions", ["at"])
    op.create_index(op.f("ix_call_decisions_prisoner_id"), "call_decisions", ["prisoner_id"])
    op.create_index(op.f("ix_call_decisions_sip_call_id"), "call_decisions", ["sip_call_id"])
    op.create_index(op.f("ix_call_decisions_uniqueid"), "call_decisions", ["uniqueid"])

    op.create_table(
        "contacts",
        _id(),
        _ref("prisoner_id", nullable=False),
        _text("number", 32),
        _text("kind", 16),
        _text("status", 16),
        _text("label", 200, ""),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["prisoner_id"], ["prisoners.id"], name=op.f("fk_contacts_prisoner_id_prisoners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("prisoner_id", "number", name=op.f("uq_contacts_prisoner_id_number")),
    )
    op.create_index(op.f("ix_contacts_prisoner_id"), "contacts", ["prisoner_id"])

    op.create_table(
        "pin_failures",
        _id(),
        _ref("prisoner_id", nullable=True),
        _ref("cell_id", nullable=False),
        _time("at"),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_pin_failures_cell_id_cells")
        ),
        sa.ForeignKeyConstraint(
            ["prisoner_id"], ["prisoners.id"], name=op.f("fk_pin_failures_prisoner_id_prisoners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_failures")),
    )
    op.create_index("ix_pin_failures_prisoner_at", "pin_failures", ["prisoner_id", "at"])

    op.create_table(
        "calls",
        _id(),
        _ref("decision_id", nullable=False),
        _ref("prisoner_id", nullable=False),
        _ref("cell_id", nullable=False),
        _text("number", 32),
        sa.Column("privileged", sa.Boolean(), nullable=False),
        _text("channel", 128),
        _text("uniqueid", 64),
        _time("started_at"),
        _time("ended_at", nullable=True),
        _text("hangup_cause", 64, ""),
        sa.ForeignKeyConstraint(["cell_id"], ["cells.id"], name=op.f("fk_calls_cell_id_cells")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["call_decisions.id"], name=op.f("fk_calls_decision_id_call_decisions")
        ),
        sa.ForeignKeyConstraint(
            ["prisoner_id"], ["prisoners.id"], name=op.f("fk_calls_prisoner_id_prisoners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_calls_decision_id")),
    )
    op.create_index(op.f("ix_calls_uniqueid"), "calls", ["uniqueid"])
    # One active call per prisoner, enforced by the database itself.
    op.create_index(
        "uq_calls_one_active_per_prisoner",
        "calls",
        ["prisoner_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
        sqlite_where=sa.text("ended_at IS NULL"),
    )

    op.create_table(
        "contact_changes",
        _id(),
        _ref("contact_id", nullable=False),
        _ref("prisoner_id", nullable=False),
        _text("number", 32),
        _text("action", 32),
        _text("old_status", 16, ""),
        _text("new_status", 16),
        _text("changed_by", 100),
        _time("changed_at"),
        _text("note", None, ""),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_changes_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["prisoner_id"], ["prisoners.id"], name=op.f("fk_contact_changes_prisoner_id_prisoners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_changes")),
    )
    op.create_index(op.f("ix_contact_changes_contact_id"), "contact_changes", ["contact_id"])
    op.create_index(op.f("ix_contact_changes_prisoner_id"), "contact_changes", ["prisoner_id"])


def downgrade() -> None:
    # Indexes go with their tables.
    for table in (
        "contact_changes",
        "calls",
        "pin_failures",
        "contacts",
        "call_decisions",
        "prisoners",
        "global_numbers",
        "cells",
    ):
        op.drop_table(table)
