"""An allowed call's write on PostgreSQL as one statement: the call path's other hot write.

Allowing a call writes four rows' worth: the decision, the call, the account's hold on the
credit and the call's reservation (call_store.py writes them as four statements in a
transaction, which is what SQLite does). On PostgreSQL they are one statement of
data-modifying CTEs, atomic by itself, run in autocommit: one round trip instead of six
(BEGIN, four statements, COMMIT).

- ``held``: the account's hold, only when the available credit covers it (a free call holds
  nothing and needs no account row), under the account's row lock; READ COMMITTED re-checks
  the condition on the latest row, so the last pence go to one of two at once.
- ``dec``, ``call``, ``res``: the decision, the call and its reservation, each inserted only
  from the row before it, so that with no hold nothing at all is written and the statement
  returns no row: refused for credit, as the four statements' rollback leaves it.
- A second active call of the prisoner violates ``uq_calls_one_active_per_prisoner``: the
  statement fails as a whole (IntegrityError), the hold with it.

The order of the locks: the account row, then the calls' unique index. A settlement takes the
call row and then the account row, but the call it settles has its end committed before a
decision can see the prisoner free (the facts read), so the decision's unique check never
waits on it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    String,
    bindparam,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from callcontrol.adapters.db.tables import (
    Account,
    Call,
    CallDecision,
    Cell,
    Reservation,
    UtcDateTime,
)

_dec, _calls = CallDecision.__table__, Call.__table__
_acc, _res, _cells = Account.__table__, Reservation.__table__, Cell.__table__

_AT = bindparam("p_at", type_=UtcDateTime)
_PRISONER = bindparam("p_prisoner_id", type_=BigInteger)
_AMOUNT = bindparam("p_amount", type_=Integer)
_NUMBER = bindparam("p_number", type_=String)
_PRIVILEGED = bindparam("p_privileged", type_=Boolean)
_CHANNEL = bindparam("p_channel", type_=String)
_UNIQUEID = bindparam("p_uniqueid", type_=String)


def _allow() -> Any:
    held = (
        update(_acc)
        .where(
            _acc.c.prisoner_id == _PRISONER,
            _AMOUNT > 0,
            _acc.c.balance_pence - _acc.c.reserved_pence >= _AMOUNT,
        )
        .values(reserved_pence=_acc.c.reserved_pence + _AMOUNT, updated_at=_AT)
        .returning(_acc.c.prisoner_id)
        .cte("held")
    )
    # One row when the call may go on: held, or free (nothing to hold).
    ok = select(held.c.prisoner_id).union_all(select(_PRISONER).where(_AMOUNT == 0)).cte("ok")
    cell_of = select(_cells.c.id).where(_cells.c.name == bindparam("p_cell", type_=String))
    decision = {
        "at": _AT,
        "handset": bindparam("p_handset", type_=String),
        "cell_id": cell_of.scalar_subquery(),
        "prisoner_id": _PRISONER,
        "dialled": bindparam("p_dialled", type_=String),
        "number": _NUMBER,
        "outcome": literal("allow", String),
        "reason": bindparam("p_reason", type_=String),
        "detail": bindparam("p_detail", type_=String),
        "privileged": _PRIVILEGED,
        "channel": _CHANNEL,
        "uniqueid": _UNIQUEID,
        "sip_call_id": bindparam("p_sip_call_id", type_=String),
        "decision_ms": bindparam("p_decision_ms", type_=Float),
    }
    dec = (
        insert(_dec)
        .from_select(
            list(decision), select(*decision.values()).select_from(ok), include_defaults=False
        )
        .returning(_dec.c.id, _dec.c.cell_id)
        .cte("dec")
    )
    call = {
        "decision_id": dec.c.id,
        "prisoner_id": _PRISONER,
        "cell_id": dec.c.cell_id,
        "number": _NUMBER,
        "privileged": _PRIVILEGED,
        "channel": _CHANNEL,
        "uniqueid": _UNIQUEID,
        "started_at": _AT,
        "recording_note": bindparam("p_recording_note", type_=String),
    }
    made = (
        insert(_calls)
        .from_select(list(call), select(*call.values()), include_defaults=False)
        .returning(_calls.c.id)
        .cte("call")
    )
    reservation = {
        "prisoner_id": _PRISONER,
        "call_id": made.c.id,
        "amount_pence": _AMOUNT,
        "max_seconds": bindparam("p_max_seconds", type_=Integer),
        "rate": bindparam("p_rate", type_=Integer),
        "destination_class": bindparam("p_destination_class", type_=String),
        "rounding": bindparam("p_rounding", type_=String),
        "free": bindparam("p_free", type_=Boolean),
        "status": literal("open", String),
        "created_at": _AT,
    }
    res = (
        insert(_res)
        .from_select(list(reservation), select(*reservation.values()), include_defaults=False)
        .returning(_res.c.call_id)
        .cte("res")
    )
    return select(res.c.call_id)


ALLOW = _allow()


async def write_allowed(conn: AsyncConnection, params: dict[str, Any]) -> int | None:
    """The allowed call written (see the module): its call id, or None when the credit did not
    cover the hold (nothing written). IntegrityError: the prisoner has an active call."""
    row = (await conn.execute(ALLOW, {f"p_{k}": v for k, v in params.items()})).first()
    return None if row is None else int(row[0])
