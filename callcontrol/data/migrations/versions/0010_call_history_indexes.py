"""Indexes for the call history (`callcontrol calls history`, GET /calls): each filter
(prisoner, cell, number, dialled string, reason) with the decision id, so that the newest
matching decisions are read straight from an index on a table of millions, and paging by id
(``before``) stays as cheap as the first page. The prisoner's single-column index is replaced
by its pair, which serves what it served.

Revision ID: 0010
Revises: 0008 (the coordinator re-chains it after 0009)
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAIRS = (
    ("ix_call_decisions_prisoner_id_id", "prisoner_id"),
    ("ix_call_decisions_cell_id_id", "cell_id"),
    ("ix_call_decisions_number_id", "number"),
    ("ix_call_decisions_dialled_id", "dialled"),
    ("ix_call_decisions_reason_id", "reason"),
)


def upgrade() -> None:
    for name, column in PAIRS:
        op.create_index(name, "call_decisions", [column, "id"])
    op.drop_index("ix_call_decisions_prisoner_id", table_name="call_decisions")


def downgrade() -> None:
    op.create_index("ix_call_decisions_prisoner_id", "call_decisions", ["prisoner_id"])
    for name, _ in PAIRS:
        op.drop_index(name, table_name="call_decisions")
