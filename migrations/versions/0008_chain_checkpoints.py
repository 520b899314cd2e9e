"""Signed checkpoints of the recording chain (a copy of the checkpoints file's lines).

Revision ID: 0008
Revises: 0007

New table recording_chain_checkpoints. Written out in full rather than imported from the models
(see 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
        nullable=False,
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "recording_chain_checkpoints",
        _id(),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_chain_checkpoints")),
    )
    op.create_index(
        op.f("ix_recording_chain_checkpoints_at"), "recording_chain_checkpoints", ["at"]
    )


def downgrade() -> None:
    op.drop_table("recording_chain_checkpoints")
