"""An index on calls by prisoner and start: the daily and weekly allowance of every decision
reads a prisoner's recent calls, which without it meant reading the whole calls table.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_calls_prisoner_started", "calls", ["prisoner_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_prisoner_started", table_name="calls")
