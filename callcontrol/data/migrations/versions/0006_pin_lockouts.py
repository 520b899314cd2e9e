"""PIN lockouts per handset, escalating; alerts.

Revision ID: 0006
Revises: 0005

Wrong PINs now count against the handset they were keyed on (pin_failures by cell_id and at:
a new index), not against every prisoner in the cell. New tables handset_pin_states (one row
per handset: locked until when, how many lockouts since the last successful call) and
pin_lockouts (every lockout: staff's alerts, and who ended one early and why).

The wrong PINs stored before this revision stay (their prisoner_id set); they are older than
a day within a day of the upgrade, and no lockout is carried over: every handset starts
unlocked at level 0.

Written out in full rather than imported from the models (see 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _cell_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["cell_id"], ["cells.id"], name=op.f(f"fk_{table}_cell_id_cells")
    )


def upgrade() -> None:
    op.create_index("ix_pin_failures_cell_at", "pin_failures", ["cell_id", "at"])
    op.create_table(
        "handset_pin_states",
        sa.Column("cell_id", BIG_ID, nullable=False),
        _time("locked_until"),
        sa.Column("level", sa.Integer(), server_default="0", nullable=False),
        _time("counting_since"),
        _time("budget_since"),
        _time("updated_at", nullable=False),
        _cell_fk("handset_pin_states"),
        sa.PrimaryKeyConstraint("cell_id", name=op.f("pk_handset_pin_states")),
    )
    op.create_table(
        "pin_lockouts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("cell_id", BIG_ID, nullable=False),
        _time("started_at", nullable=False),
        _time("until", nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _time("unlocked_at"),
        sa.Column("unlocked_by", sa.String(length=100), server_default="", nullable=False),
        sa.Column("unlock_reason", sa.Text(), server_default="", nullable=False),
        _cell_fk("pin_lockouts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_lockouts")),
    )
    op.create_index("ix_pin_lockouts_started_at", "pin_lockouts", ["started_at"])
    op.create_index("ix_pin_lockouts_cell_id", "pin_lockouts", ["cell_id"])


def downgrade() -> None:
    op.drop_index("ix_pin_lockouts_cell_id", table_name="pin_lockouts")
    op.drop_index("ix_pin_lockouts_started_at", table_name="pin_lockouts")
    op.drop_table("pin_lockouts")
    op.drop_table("handset_pin_states")
    op.drop_index("ix_pin_failures_cell_at", table_name="pin_failures")
