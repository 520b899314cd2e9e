"""The money tables: accounts, the append-only ledger, reservations for calls, tariffs.

Money is whole pence (``int``); rates are whole hundredths of a penny per minute (see
domain/tariffs.py). An account's ``balance_pence`` is the sum of its ledger entries and is
changed only in the transaction that appends an entry (adapters/db/ledger.py);
``reserved_pence`` is the sum of its open reservations. The database itself refuses an UPDATE
or a DELETE of a ledger entry (triggers made by migration 0002), a negative balance, and more
reserved than the balance holds.

These tables are on the same ``Base`` as core.py (tables/base.py); the package imports this
module so that ``Base.metadata`` (Alembic, the schema test) always holds them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callcontrol.adapters.db.tables.base import Base, BigId, UtcDateTime, utcnow

ENTRY_KINDS = ("topup", "charge", "refund", "adjustment")
RESERVATION_STATUSES = ("open", "settled", "released")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Account(Base):
    """A prisoner's money: the balance (the sum of the ledger) and what calls have reserved."""

    __tablename__ = "accounts"
    prisoner_id: Mapped[int] = mapped_column(
        ForeignKey("prisoners.id"), primary_key=True, autoincrement=False
    )
    balance_pence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reserved_pence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("balance_pence >= 0", name="balance_not_negative"),
        CheckConstraint(
            "reserved_pence >= 0 AND reserved_pence <= balance_pence", name="reserved_within"
        ),
    )


class LedgerEntry(Base):
    """One movement of money, never changed or removed once written.

    ``amount_pence`` is signed: top-ups and refunds are positive, charges negative,
    adjustments either; never 0. ``balance_after`` is the account's balance once it applied.
    ``idempotency_key`` makes a retried request harmless (``topup:REF``, ``call:ID:charge``).
    """

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_pence: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(Text, default="", server_default="")
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    __table_args__ = (
        CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint(
            "(kind IN ('topup', 'refund') AND amount_pence > 0)"
            " OR (kind = 'charge' AND amount_pence < 0)"
            " OR (kind = 'adjustment' AND amount_pence <> 0)",
            name="amount_sign",
        ),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
    )


class Reservation(Base):
    """Money held for one call, enough for its longest allowed length, until it is settled
    (charged, then released) or released (not charged). Free calls hold 0."""

    __tablename__ = "reservations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    amount_pence: Mapped[int] = mapped_column(Integer)
    max_seconds: Mapped[int] = mapped_column(Integer)
    rate: Mapped[int] = mapped_column(Integer)  # hundredths of a penny per minute
    destination_class: Mapped[str] = mapped_column(String(32))
    rounding: Mapped[str] = mapped_column(String(32))
    free: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    __table_args__ = (
        CheckConstraint("amount_pence >= 0", name="amount_not_negative"),
        CheckConstraint("max_seconds >= 0", name="max_seconds_not_negative"),
        CheckConstraint("rate >= 0", name="rate_not_negative"),
        CheckConstraint(_in("status", RESERVATION_STATUSES), name="status"),
        Index("ix_reservations_prisoner_id_status", "prisoner_id", "status"),
    )


class TariffRow(Base):
    """The rate of one destination class (domain/tariffs.py's Tariff, as stored)."""

    __tablename__ = "tariffs"
    destination_class: Mapped[str] = mapped_column(String(32), primary_key=True)
    rate: Mapped[int] = mapped_column(Integer)  # hundredths of a penny per minute
    weekend_rate: Mapped[int | None] = mapped_column(Integer)  # None: the same as rate
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    __table_args__ = (
        CheckConstraint("rate >= 0", name="rate_not_negative"),
        CheckConstraint(
            "weekend_rate IS NULL OR weekend_rate >= 0", name="weekend_rate_not_negative"
        ),
    )
