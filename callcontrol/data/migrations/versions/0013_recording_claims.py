"""Recording workers' claims; the calls by when they were settled.

Revision ID: 0013
Revises: 0011

New table recording_claims: one row per call whose recording a worker (`callcontrol recordings
worker`) took on, with the lease that lets another worker take it over if the first dies. New
index ix_calls_settled_at: the worker reads the calls settled in the last minute every second.
Written out in full rather than imported from the models (see 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recording_claims",
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_recording_claims_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_recording_claims")),
    )
    op.create_index("ix_calls_settled_at", "calls", ["settled_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_settled_at", table_name="calls")
    op.drop_table("recording_claims")
