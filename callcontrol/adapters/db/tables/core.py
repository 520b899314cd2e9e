"""The prison's tables: cells and handsets, prisoners, contacts, global numbers, decisions and
calls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcontrol.adapters.db.tables.base import Base, BigId, UtcDateTime, utcnow
from callcontrol.domain import sip_digest


class Cell(Base):
    """A cell and its in-cell handset (one SIP endpoint per cell)."""

    __tablename__ = "cells"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    wing: Mapped[str] = mapped_column(String(32), default="", server_default="")
    sip_username: Mapped[str] = mapped_column(String(64), unique=True)
    # The handset's digest credential, never its password (migration 0007; domain/sip_digest):
    # MD5(sip_username:sip_realm:password), which is all Asterisk needs to check it.
    sip_realm: Mapped[str] = mapped_column(String(64), default=sip_digest.REALM)
    sip_md5_cred: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class CellsVersion(Base):
    """The one row (id 1): a counter that triggers on ``cells`` (migration 0009) bump in the
    same transaction as any change to a handset's endpoint; the daemon polls it to rewrite the
    cells' PJSIP endpoints (services/cells_sync.py)."""

    __tablename__ = "cells_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class GlobalsVersion(Base):
    """The one row (id 1): a counter that triggers on ``global_numbers`` and ``tariffs``
    (migration 0011) bump in the same transaction as any change to either; on PostgreSQL they
    also NOTIFY callcontrol_globals. The daemon's cache of both (adapters/db/globals_cache.py)
    reloads when it moves."""

    __tablename__ = "globals_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class Prisoner(Base):
    __tablename__ = "prisoners"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prison_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # HMAC of the PIN with a key kept outside the database (see domain/pins.py).
    pin_hash: Mapped[str] = mapped_column(String(128))
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cells.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    suspended_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The longest call this prisoner may make, in seconds (None: no limit of their own).
    max_call_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Contact(Base):
    """A number on one prisoner's list: social or legal; pending, approved or blocked."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("prisoner_id", "number"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))  # E.164
    kind: Mapped[str] = mapped_column(String(16))  # social | legal
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | blocked
    label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The longest call to this contact, in seconds (None: no limit of its own).
    max_call_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ContactChange(Base):
    """Append-only history of every change to a contact: who, when, what."""

    __tablename__ = "contact_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))  # added | approved | blocked | ...
    old_status: Mapped[str] = mapped_column(String(16), default="", server_default="")
    new_status: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class GlobalNumber(Base):
    """A number blocked for everyone, or allowed for everyone (and maybe privileged)."""

    __tablename__ = "global_numbers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # E.164 or a short code
    policy: Mapped[str] = mapped_column(String(16))  # blocked | allowed
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str] = mapped_column(String(200), default="", server_default="")
    changed_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class PinFailure(Base):
    """A wrong PIN keyed on a cell's handset, counted against that handset (migration 0006).

    ``prisoner_id`` is kept for the rows written before 0006, which counted a wrong PIN against
    every prisoner in the cell; it is None from then on."""

    __tablename__ = "pin_failures"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prisoner_id: Mapped[int | None] = mapped_column(ForeignKey("prisoners.id"))
    cell_id: Mapped[int] = mapped_column(ForeignKey("cells.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (
        Index("ix_pin_failures_prisoner_at", "prisoner_id", "at"),
        Index("ix_pin_failures_cell_at", "cell_id", "at"),
    )


class CallDecision(Base):
    """Every decision the daemon made, allowed or refused, and why."""

    __tablename__ = "call_decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    handset: Mapped[str] = mapped_column(String(64))  # the SIP endpoint as Asterisk saw it
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cells.id"))
    prisoner_id: Mapped[int | None] = mapped_column(ForeignKey("prisoners.id"))
    dialled: Mapped[str] = mapped_column(String(64))  # as dialled (truncated if absurdly long)
    number: Mapped[str | None] = mapped_column(String(32))  # normalised
    outcome: Mapped[str] = mapped_column(String(16))  # allow | refuse | service
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(128), default="", server_default="")
    uniqueid: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    sip_call_id: Mapped[str] = mapped_column(String(255), default="", server_default="", index=True)
    decision_ms: Mapped[float | None] = mapped_column()
    # Call history (adapters/db/history_store.py, migration 0010): each filter, newest first.
    __table_args__ = (
        Index("ix_call_decisions_prisoner_id_id", "prisoner_id", "id"),
        Index("ix_call_decisions_cell_id_id", "cell_id", "id"),
        Index("ix_call_decisions_number_id", "number", "id"),
        Index("ix_call_decisions_dialled_id", "dialled", "id"),
        Index("ix_call_decisions_reason_id", "reason", "id"),
    )


class Call(Base):
    """An allowed call, from the decision until Asterisk reports its end."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("call_decisions.id"), unique=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"))
    cell_id: Mapped[int] = mapped_column(ForeignKey("cells.id"))
    number: Mapped[str] = mapped_column(String(32))
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(128))
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hangup_cause: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # Settlement (migration 0002): how the call went and what it cost.
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    dial_status: Mapped[str] = mapped_column(String(32), default="", server_default="")
    disconnect_cause: Mapped[str] = mapped_column(String(64), default="", server_default="")
    ended_by: Mapped[str] = mapped_column(String(16), default="", server_default="")
    charge_pence: Mapped[int | None] = mapped_column(Integer)  # None: not settled
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted: Mapped[bool | None] = mapped_column(Boolean)  # did the called party accept?
    # Why a call is not recorded (a privileged call), written with the decision; "" otherwise.
    recording_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    __table_args__ = (
        # One active call per prisoner, enforced by the database itself.
        Index(
            "uq_calls_one_active_per_prisoner",
            "prisoner_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        # A prisoner's recent calls, read by every decision (the daily and weekly allowance).
        Index("ix_calls_prisoner_started", "prisoner_id", "started_at"),
    )
