"""Signed checkpoints of the recording chain; the call journal as read.

Revision ID: 0008
Revises: 0007

New tables recording_chain_checkpoints (a copy of the checkpoints file's lines), call_journal
(each call's acceptance and end as the journal said) and call_journal_position (its one row:
where reading the journal stopped; none until the daemon first reads it). Written out in full
rather than imported from the models (see 0001).
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

    op.create_table(
        "call_journal",
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dial_status", sa.String(length=32), server_default="", nullable=False),
        sa.Column("hangup_cause", sa.String(length=16), server_default="", nullable=False),
        sa.Column("hangup_source", sa.String(length=128), server_default="", nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uniqueid", name=op.f("pk_call_journal")),
    )
    op.create_table(
        "call_journal_position",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_journal_position")),
        sa.CheckConstraint("id = 1", name=op.f("ck_call_journal_position_one_row")),
    )


def downgrade() -> None:
    op.drop_table("call_journal_position")
    op.drop_table("call_journal")
    op.drop_table("recording_chain_checkpoints")
