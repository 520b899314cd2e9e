"""The call journal as the daemon has read it: each call's acceptance and end, and where in the
journal's files the reading stopped (services/journal.py).

The journal (the file Asterisk appends to) is read incrementally; what was read goes here in the
same transaction as the new position, so a restart resumes where the last commit left off and
still knows the acceptances of calls that are not settled yet, without rereading the files.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcontrol.adapters.db.tables.base import Base, UtcDateTime, utcnow


class JournalCall(Base):
    """What the journal said of one call (by its caller channel's unique id)."""

    __tablename__ = "call_journal"
    uniqueid: Mapped[str] = mapped_column(String(64), primary_key=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: no end line yet
    dial_status: Mapped[str] = mapped_column(String(32), default="", server_default="")
    hangup_cause: Mapped[str] = mapped_column(String(16), default="", server_default="")
    hangup_source: Mapped[str] = mapped_column(String(128), default="", server_default="")
    read_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class JournalPositionRow(Base):
    """The one row (id 1): the file being read (device and inode: a rotated file keeps them
    under its new name) and the offset of the first byte not yet read."""

    __tablename__ = "call_journal_position"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)
