"""Prisoners' money on the call path: reservations for calls and their settlement, and the
ledger's primitives (lock an account, post an entry) that the operator's acts share through
account_store.py. The rules of those acts (top-up, adjustment, the balance cap, tariffs) are
in services/accounts.py; what an entry may do to an account is domain/money.posting_problem.

Money is whole pence (``int``), never a float. Every movement is a row appended to
``ledger_entries`` (the database refuses to change or remove one), and the account's
``balance_pence`` changes in the same transaction as the entry it follows, so the balance is
always the sum of the ledger (``verify_account`` checks it). Money held for calls in progress
is ``reserved_pence``, the sum of the open reservations; what can still be spent is
``available = balance - reserved``.

Every function takes an AsyncSession (``reserve`` an AsyncConnection too: the decision's
write runs on SQLAlchemy Core, statements built once) and only flushes: the caller commits (or
rolls back, which it must do after a LedgerError). Concurrency, on both backends, without a lost
update:

- PostgreSQL (READ COMMITTED): a function that changes an account first locks its row
  (``SELECT ... FOR UPDATE``; ``reserve`` uses one conditional ``UPDATE ... WHERE
  balance_pence - reserved_pence >= amount``, which waits for the row and re-checks the
  condition on its latest version). Releasing also locks the reservation row first. Settling
  (settlement_sql.py, the call path's statements) claims the call's row first with a
  conditional ``UPDATE ... WHERE settled_at IS NULL``, then updates the reservation and the
  account, each with an UPDATE that waits for the row and works from its latest version.
  Everything is read again after the lock. CHECK constraints back it all up.
- SQLite (one writer at a time): the first statement of every change is a write (the
  ``INSERT ... ON CONFLICT DO NOTHING`` that makes sure the account exists, or the conditional
  UPDATE), which takes the database's write lock at once; what is read after it cannot change
  until the commit. Other writers wait (busy timeout). (The driver, as SQLAlchemy sets it up,
  begins a transaction at its first write: the reads before it hold no lock to upgrade, so
  writers cannot deadlock.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from callcontrol.adapters.db.settlement_sql import SYSTEM, Outcome, charge_key, settle_call
from callcontrol.adapters.db.tables import (
    Account,
    Call,
    LedgerEntry,
    Prisoner,
    Reservation,
    TariffRow,
    utcnow,
)
from callcontrol.domain.money import pounds
from callcontrol.domain.tariffs import Rounding, Tariff
from callcontrol.services.checks import whole
from callcontrol.services.errors import Invalid

__all__ = ["SYSTEM", "pounds"]  # re-exported: pence for people; who writes call charges

_NO_SYNC = {"synchronize_session": False}


class LedgerError(Exception):
    """A money operation refused; the message says why, for the operator. Nothing was changed
    by it, but the caller must roll its transaction back."""


class AccountMismatch(LedgerError):
    """An account disagrees with its ledger or its reservations (``verify_account``)."""


class Balance(NamedTuple):
    balance: int  # pence: the sum of the ledger
    reserved: int  # pence held for calls in progress
    available: int  # pence that can be spent: balance - reserved


# --- checks ------------------------------------------------------------------------------------


def _whole(value: object, what: str, positive: bool = False, nonzero: bool = False) -> int:
    """``value`` if it is a whole number (not a bool) as required (services/checks.py's rule),
    else LedgerError."""
    try:
        return whole(value, what, positive=positive, nonzero=nonzero)
    except Invalid as e:
        raise LedgerError(str(e)) from None


async def find_prisoner(session: AsyncSession, prisoner_number: str) -> int:
    """The id of the prisoner with this prison number, else LedgerError."""
    pid = await session.scalar(select(Prisoner.id).where(Prisoner.prison_number == prisoner_number))
    if pid is None:
        raise LedgerError(f"no prisoner with prison number {prisoner_number!r}")
    return pid


# --- accounts and entries ----------------------------------------------------------------------


async def lock_account(session: AsyncSession, prisoner_id: int) -> tuple[int, int]:
    """Make sure the account exists and lock it until the end of the transaction.

    Returns (balance, reserved), read after the lock."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(Account)
        .values(prisoner_id=prisoner_id, balance_pence=0, reserved_pence=0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["prisoner_id"])
    )
    row = (
        await session.execute(
            select(Account.balance_pence, Account.reserved_pence)
            .where(Account.prisoner_id == prisoner_id)
            .with_for_update()
        )
    ).one()
    return row.balance_pence, row.reserved_pence


async def _update(session: AsyncSession, model: Any, where: Any, **values: Any) -> None:
    await session.execute(update(model).where(where).values(**values).execution_options(**_NO_SYNC))


async def set_account(session: AsyncSession, prisoner_id: int, **values: Any) -> None:
    await _update(
        session, Account, Account.prisoner_id == prisoner_id, updated_at=utcnow(), **values
    )


async def find_entry(session: AsyncSession, idempotency_key: str) -> LedgerEntry | None:
    """The entry written with ``idempotency_key``, if any."""
    return await session.scalar(
        select(LedgerEntry).where(LedgerEntry.idempotency_key == idempotency_key)
    )


async def balance(session: AsyncSession, prisoner_id: int) -> Balance:
    """(balance, reserved, available) in pence; (0, 0, 0) for an account never used."""
    query = select(Account.balance_pence, Account.reserved_pence)
    row = (await session.execute(query.where(Account.prisoner_id == prisoner_id))).one_or_none()
    if row is None:
        return Balance(0, 0, 0)
    return Balance(row.balance_pence, row.reserved_pence, row.balance_pence - row.reserved_pence)


# --- reservations ------------------------------------------------------------------------------


_accounts, _reservations = Account.__table__, Reservation.__table__
# The reservation's two writes, built once: the conditional UPDATE (which, on PostgreSQL, waits
# for the account's row and re-checks the condition on its latest version) and the INSERT.
_HOLD = (
    update(_accounts)
    .where(
        _accounts.c.prisoner_id == bindparam("holder"),
        _accounts.c.balance_pence - _accounts.c.reserved_pence >= bindparam("amount"),
    )
    .values(
        reserved_pence=_accounts.c.reserved_pence + bindparam("amount"),
        updated_at=bindparam("at"),
    )
    .returning(_accounts.c.prisoner_id)
)
_INSERT_RESERVATION = insert(_reservations)


def checked_reservation(
    amount_pence: int, max_seconds: int, rate: int, rounding: Rounding | str, free: bool
) -> tuple[int, Rounding]:
    """A reservation's amount (0 for a free call) and rounding, its figures checked whole
    (LedgerError): the rule of every reservation, whichever statement writes it."""
    amount = 0 if free else _whole(amount_pence, "a reservation")
    _whole(max_seconds, "the longest call (seconds)")
    _whole(rate, "the rate")
    try:
        return amount, Rounding(rounding)
    except ValueError:
        raise LedgerError(f"unknown rounding {rounding!r}") from None


async def reserve(
    session: AsyncSession | AsyncConnection,
    prisoner_id: int,
    call_id: int,
    amount_pence: int,
    *,
    max_seconds: int,
    rate: int,
    destination_class: str,
    rounding: Rounding | str,
    free: bool,
    new_call: bool = False,
) -> bool:
    """Hold ``amount_pence`` of the prisoner's available money for a call, atomically.

    True when held; False, with nothing changed, when less than that is available. A free call
    holds 0 and always succeeds. Each call has at most one reservation, and must be a call of
    this prisoner (LedgerError). ``new_call``: the caller opened the call for this prisoner in
    this same transaction (the decision's write), so neither needs reading first; the table's
    unique call_id still refuses a second reservation."""
    amount, rounding = checked_reservation(amount_pence, max_seconds, rate, rounding, free)
    if not new_call:
        owner = await session.scalar(select(Call.prisoner_id).where(Call.id == call_id))
        if owner is None:
            raise LedgerError(f"no call {call_id}")
        if owner != prisoner_id:
            raise LedgerError(f"call {call_id} is not a call of prisoner {prisoner_id}")
        taken = select(Reservation.id).where(Reservation.call_id == call_id)
        if await session.scalar(taken) is not None:
            raise LedgerError(f"call {call_id} already has a reservation")
    now = utcnow()
    if amount > 0:
        held = await session.execute(_HOLD, {"holder": prisoner_id, "amount": amount, "at": now})
        if held.first() is None:
            return False
    values = {
        "prisoner_id": prisoner_id, "call_id": call_id, "amount_pence": amount,
        "max_seconds": max_seconds, "rate": rate, "destination_class": destination_class,
        "rounding": str(rounding), "free": free, "status": "open", "created_at": now,
    }  # fmt: skip
    try:
        await session.execute(_INSERT_RESERVATION, values)
    except IntegrityError:
        raise LedgerError(f"call {call_id} already has a reservation") from None
    return True


async def _open_reservation(session: AsyncSession, call_id: int) -> Row[Any] | None:
    """The call's reservation, locked, read after its account is locked too; None if it has
    none. (Re-read after the account lock: on SQLite that is when the write lock is held.)"""
    query = select(Reservation.prisoner_id, Reservation.amount_pence, Reservation.status).where(
        Reservation.call_id == call_id
    )
    first = (await session.execute(query.with_for_update())).one_or_none()
    if first is None:
        return None
    await lock_account(session, first.prisoner_id)
    return (await session.execute(query)).one()


async def _close(
    session: AsyncSession, call_id: int, prisoner_id: int, held: int, status: str
) -> None:
    await set_account(session, prisoner_id, reserved_pence=Account.reserved_pence - held)
    where = Reservation.call_id == call_id
    await _update(session, Reservation, where, status=status, closed_at=utcnow())


async def settle(
    session: AsyncSession,
    call_id: int,
    charge_pence: int,
    *,
    talk_seconds: int,
    answered_at: datetime | None = None,
    dial_status: str | None = None,
    disconnect_cause: str | None = None,
    ended_by: str | None = None,
    accepted: bool | None = None,
) -> LedgerEntry | None:
    """Charge a call once, release its reservation, and record the outcome on the call.

    The charge is ``min(charge_pence, reserved amount)``: never more than was reserved (the
    reservation covered the longest the call was allowed to last, so a larger figure can only
    be an error, and the prisoner is not charged for it); a free call reserved 0 and is never
    charged. A charge entry is written only when the charge is above 0; returns it (or None).
    Exactly once: settling a call already settled changes nothing and returns its charge
    entry, if any (key ``call:ID:charge``). LedgerError when the call has no reservation.
    The statements are the call path's own (settlement_sql.py), in the session's transaction.
    """
    asked = _whole(charge_pence, "a charge")
    _whole(talk_seconds, "the talk time (seconds)")
    held = select(Reservation.id).where(Reservation.call_id == call_id)
    if await session.scalar(held) is None:
        raise LedgerError(f"call {call_id} has no reservation to settle")
    outcome = Outcome(answered_at, dial_status, disconnect_cause, ended_by, accepted)
    conn = await session.connection()
    await settle_call(conn, call_id, asked, talk_seconds, outcome, utcnow())
    return await find_entry(session, charge_key(call_id))


async def release(session: AsyncSession, call_id: int) -> None:
    """Release a call's reservation without charging (unanswered, refused, not accepted,
    dropped by the system): the call is recorded as charged 0. Idempotent: nothing happens
    for a call already settled or released, or without a reservation."""
    res = await _open_reservation(session, call_id)
    if res is None or res.status != "open":
        return
    await _close(session, call_id, res.prisoner_id, res.amount_pence, "released")
    await _update(session, Call, Call.id == call_id, charge_pence=0, settled_at=utcnow())


# --- reading and checking ----------------------------------------------------------------------


async def verify_account(session: AsyncSession, prisoner_id: int) -> None:
    """Raise AccountMismatch unless the balance is the sum of the ledger, each entry's
    ``balance_after`` is the running sum, and the reserved money is the sum of the open
    reservations."""
    held = await balance(session, prisoner_id)
    amounts = await session.execute(
        select(LedgerEntry.id, LedgerEntry.amount_pence, LedgerEntry.balance_after)
        .where(LedgerEntry.prisoner_id == prisoner_id)
        .order_by(LedgerEntry.id)
    )
    running = 0
    for entry_id, amount, after in amounts:
        running += amount
        if after != running:
            raise AccountMismatch(
                f"prisoner {prisoner_id}: entry {entry_id} says balance {after}p, "
                f"the ledger sums to {running}p there"
            )
    if held.balance != running:
        raise AccountMismatch(
            f"prisoner {prisoner_id}: balance {held.balance}p, the ledger sums to {running}p"
        )
    reserved = await session.scalar(
        select(func.coalesce(func.sum(Reservation.amount_pence), 0)).where(
            Reservation.prisoner_id == prisoner_id, Reservation.status == "open"
        )
    )
    if held.reserved != reserved:
        raise AccountMismatch(
            f"prisoner {prisoner_id}: reserved {held.reserved}p, "
            f"the open reservations hold {reserved}p"
        )


# --- tariffs -----------------------------------------------------------------------------------


async def list_tariffs(session: AsyncSession) -> list[Tariff]:
    rows = await session.scalars(select(TariffRow).order_by(TariffRow.destination_class))
    return [Tariff(r.destination_class, r.rate, r.weekend_rate) for r in rows]
