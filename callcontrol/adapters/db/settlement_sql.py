"""A call's settlement as SQLAlchemy Core statements built once: the call path's hot writes.

Settling a call closes it (its outcome, ``settled_at``, its end if not yet recorded), charges
it once and releases its reservation. The whole of it is guarded by one condition, the call's
``settled_at IS NULL``: the first statement claims the call by setting it, so of two reports of
one end (the hangup handler, the journal, a repeated or concurrent request) exactly one finds
the call unsettled and settles it; the other changes nothing. The ledger's rules hold as in
ledger.py: the charge is ``min(asked, the open reservation's amount)`` (0 without an open
reservation), written as an appended ``charge`` entry (key ``call:ID:charge``, unique) only
when above 0, with ``balance_after`` read from the account row as updated, under its row lock,
so entries stay in the order of the balances they follow; the account's CHECK constraints
back it all up.

- PostgreSQL: one statement (data-modifying CTEs), atomic by itself, so it can run outside an
  explicit transaction (one round trip). The call's row is locked first; a concurrent second
  settlement waits for it and then finds it settled (READ COMMITTED re-checks the condition on
  the latest row), so its reservation, account and ledger parts see no row and do nothing. The
  ledger entry's id is drawn only once the account row is locked.
- SQLite: the same four steps as statements in the caller's transaction; the first is a write,
  which takes the database's write lock, so nothing read after it can change until the commit.

The caller owns the transaction (SQLite) and must roll back after an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    String,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from callcontrol.adapters.db.tables import Account, Call, LedgerEntry, Reservation, UtcDateTime

SYSTEM = "system"  # who writes the entries the system makes (a call's charge)

_calls = Call.__table__
_res = Reservation.__table__
_acc = Account.__table__
_led = LedgerEntry.__table__

_CALL = bindparam("p_call_id", type_=BigInteger)
_NOW = bindparam("p_now", type_=UtcDateTime)
_ASKED = bindparam("p_asked", type_=Integer)


def _keep(name: str, column: Any, type_: Any) -> Any:
    """The value given, or the column's own when None is given."""
    return func.coalesce(bindparam(f"p_{name}", type_=type_), column)


def _claim(least: Any) -> Any:
    """UPDATE calls: settle the call if it is not settled yet; returns (id, charge_pence)."""
    held = (
        select(_res.c.amount_pence)
        .where(_res.c.call_id == _CALL, _res.c.status == "open")
        .scalar_subquery()
    )
    ended_at = bindparam("p_ended_at", type_=UtcDateTime)
    return (
        update(_calls)
        .where(_calls.c.id == _CALL, _calls.c.settled_at.is_(None))
        .values(
            settled_at=_NOW,
            charge_pence=least(_ASKED, func.coalesce(held, 0)),
            talk_seconds=bindparam("p_talk_seconds", type_=Integer),
            answered_at=_keep("answered_at", _calls.c.answered_at, UtcDateTime),
            dial_status=_keep("dial_status", _calls.c.dial_status, String),
            disconnect_cause=_keep("disconnect_cause", _calls.c.disconnect_cause, String),
            ended_by=_keep("ended_by", _calls.c.ended_by, String),
            accepted=_keep("accepted", _calls.c.accepted, Boolean),
            # The end as first recorded stays (AMI may have recorded it already).
            ended_at=func.coalesce(_calls.c.ended_at, ended_at),
            hangup_cause=case(
                (_calls.c.ended_at.is_(None), _keep("hangup_cause", _calls.c.hangup_cause, String)),
                else_=_calls.c.hangup_cause,
            ),
        )
        .returning(_calls.c.id, _calls.c.charge_pence)
    )


def _entry_values(prisoner_id: Any, charge: Any, balance_after: Any) -> dict[str, Any]:
    return {
        "prisoner_id": prisoner_id,
        "kind": literal("charge", String),
        "amount_pence": -charge,
        "balance_after": balance_after,
        "idempotency_key": bindparam("p_key", type_=String),
        "reference": bindparam("p_reference", type_=String),
        "call_id": _CALL,
        "created_at": _NOW,
        "created_by": literal(SYSTEM, String),
    }


def _postgresql() -> Any:
    claimed = _claim(func.least).cte("claimed")
    closed = (
        update(_res)
        .where(_res.c.call_id.in_(select(claimed.c.id)), _res.c.status == "open")
        .values(status="settled", closed_at=_NOW)
        .returning(_res.c.call_id, _res.c.prisoner_id, _res.c.amount_pence)
        .cte("closed")
    )
    account = (
        update(_acc)
        .where(_acc.c.prisoner_id == closed.c.prisoner_id, closed.c.call_id == claimed.c.id)
        .values(
            reserved_pence=_acc.c.reserved_pence - closed.c.amount_pence,
            balance_pence=_acc.c.balance_pence - claimed.c.charge_pence,
            updated_at=_NOW,
        )
        .returning(_acc.c.prisoner_id, _acc.c.balance_pence, claimed.c.charge_pence)
        .cte("account")
    )
    values = _entry_values(account.c.prisoner_id, account.c.charge_pence, account.c.balance_pence)
    entry = (
        insert(_led)
        .from_select(list(values), select(*values.values()).where(account.c.charge_pence > 0))
        .returning(_led.c.id)
        .cte("entry")
    )
    return select(claimed.c.charge_pence, select(entry.c.id).scalar_subquery()).select_from(claimed)


_PG_SETTLE = _postgresql()
_SQLITE_CLAIM = _claim(func.min)  # SQLite's min() of two values is the lesser
_SQLITE_CLOSE = (
    update(_res)
    .where(_res.c.call_id == _CALL, _res.c.status == "open")
    .values(status="settled", closed_at=_NOW)
    .returning(_res.c.prisoner_id, _res.c.amount_pence)
)
_PRISONER = bindparam("p_prisoner_id", type_=Integer)
_CHARGE = bindparam("p_charge", type_=Integer)
_SQLITE_ACCOUNT = (
    update(_acc)
    .where(_acc.c.prisoner_id == _PRISONER)
    .values(
        reserved_pence=_acc.c.reserved_pence - bindparam("p_held", type_=Integer),
        balance_pence=_acc.c.balance_pence - _CHARGE,
        updated_at=_NOW,
    )
    .returning(_acc.c.balance_pence)
)
_SQLITE_ENTRY = insert(_led).values(
    _entry_values(_PRISONER, _CHARGE, bindparam("p_balance_after", type_=Integer))
)


def charge_key(call_id: int) -> str:
    """The idempotency key of a call's charge entry."""
    return f"call:{call_id}:charge"


@dataclass(frozen=True)
class Outcome:
    """How a call went, as written on it when settled; None keeps the call's own value.
    ``ended_at`` and ``hangup_cause`` are written only if the call has no end recorded yet."""

    answered_at: datetime | None = None
    dial_status: str | None = None
    disconnect_cause: str | None = None
    ended_by: str | None = None
    accepted: bool | None = None
    ended_at: datetime | None = None
    hangup_cause: str | None = None


async def settle_call(
    conn: AsyncConnection,
    call_id: int,
    asked_pence: int,
    talk_seconds: int,
    outcome: Outcome,
    now: datetime,
) -> int | None:
    """Settle the call if nobody has: the charge applied (pence), or None when it was settled
    already (nothing changed)."""
    o = outcome
    params: dict[str, Any] = {
        "p_call_id": call_id,
        "p_asked": asked_pence,
        "p_now": now,
        "p_talk_seconds": talk_seconds,
        "p_answered_at": o.answered_at,
        "p_dial_status": o.dial_status,
        "p_disconnect_cause": o.disconnect_cause,
        "p_ended_by": o.ended_by,
        "p_accepted": o.accepted,
        "p_ended_at": o.ended_at,
        "p_hangup_cause": None if o.hangup_cause is None else o.hangup_cause[:64],
        "p_key": charge_key(call_id),
        "p_reference": f"call {call_id}",
    }
    if conn.dialect.name == "postgresql":
        row = (await conn.execute(_PG_SETTLE, params)).first()
        return None if row is None else int(row[0])
    claimed = (await conn.execute(_SQLITE_CLAIM, params)).first()
    if claimed is None:
        return None
    charge = int(claimed.charge_pence)
    closed = (await conn.execute(_SQLITE_CLOSE, params)).first()
    if closed is None:
        return charge  # no open reservation: charged 0 (see the claim)
    params.update(p_prisoner_id=closed.prisoner_id, p_held=closed.amount_pence, p_charge=charge)
    balance_after = (await conn.execute(_SQLITE_ACCOUNT, params)).scalar_one()
    if charge > 0:
        await conn.execute(_SQLITE_ENTRY, {**params, "p_balance_after": balance_after})
    return charge
