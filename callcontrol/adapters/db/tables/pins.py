"""The PIN lockout tables: each handset's lockout state, and every lockout (staff's alerts).

``handset_pin_states`` holds one row per cell that has had a wrong PIN: whether its handset is
locked, until when, and how many lockouts since the last successful call (the escalation).
``pin_lockouts`` keeps every lockout, with when it ended and, when staff ended it, who and why:
`callcontrol alerts` and GET /alerts list them. Wrong PINs themselves are rows of
``pin_failures`` (core.py), by cell. Migration 0006 creates these tables.

These tables are on the same ``Base`` as core.py (tables/base.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcontrol.adapters.db.tables.base import Base, BigId, UtcDateTime, utcnow


class HandsetPinState(Base):
    """One handset's lockout state (domain/pin_lockout.py's LockState)."""

    __tablename__ = "handset_pin_states"
    cell_id: Mapped[int] = mapped_column(ForeignKey("cells.id"), primary_key=True)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    counting_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    budget_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class PinLockout(Base):
    """A handset locked by wrong PINs: an alert for staff until it is over (and after)."""

    __tablename__ = "pin_lockouts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("cells.id"))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    level: Mapped[int] = mapped_column(Integer)  # 1: the first since the last successful call
    failures: Mapped[int] = mapped_column(Integer)  # wrong PINs on the handset in the last day
    # Set when staff ended it early (`callcontrol cell unlock`, POST /cells/NAME/unlock).
    unlocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unlocked_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    unlock_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    __table_args__ = (
        Index("ix_pin_lockouts_started_at", "started_at"),
        Index("ix_pin_lockouts_cell_id", "cell_id"),
    )
