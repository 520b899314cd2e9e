"""The records of the call path, on SQLAlchemy Core (implements services' CallStore).

Every statement of a decision is built once, at import: no ORM unit of work, no per-call query
building. Each step of the call is one unit of work (``unit()``: one pool checkout), whose reads
run in autocommit (no BEGIN or ROLLBACK around them): the handset in one statement, a PIN try in
one (pin_store.PIN_FACTS), the decision's facts in one (``FACTS``). The decision is then written
in the same unit, in one transaction: the decision row, and for an allowed call the call row
and its reservation (ledger.reserve), four statements in all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.decision_sql import write_allowed
from callcontrol.adapters.db.pin_store import SqlPinStore, pin_facts
from callcontrol.domain.decide import BillingContext, PrisonerFacts
from callcontrol.domain.limits import Usage
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    Decision,
    Handset,
    Outcome,
    Reason,
)
from callcontrol.services.authorise import DecisionRecord, PinFacts


def not_recorded_note(decision: Decision) -> str:
    """Why an allowed call will not be recorded, for the call's record ("" if it will be)."""
    if not decision.privileged:
        return ""
    why = {
        Reason.APPROVED_CONTACT: "an approved legal contact",
        Reason.GLOBAL_ALLOWED: "a number marked privileged for everyone",
        Reason.EMERGENCY_ALLOWED: "an emergency call",
    }.get(decision.reason, decision.reason.value)
    return f"not recorded: privileged ({why})"


class _Refused(Exception):
    def __init__(self, reason: Reason) -> None:
        self.reason = reason


MAX_DIALLED = 64

_cells, _prisoners, _contacts = m.Cell.__table__, m.Prisoner.__table__, m.Contact.__table__
_calls, _decisions = m.Call.__table__, m.CallDecision.__table__
_accounts, _reservations = m.Account.__table__, m.Reservation.__table__

HANDSET = select(_cells.c.name, _cells.c.sip_username, _cells.c.enabled).where(
    _cells.c.sip_username == bindparam("sip_username")
)

# The paid calls since the earlier of the day's and the week's start (the week's calls start at
# the earlier bound; the two overlap), on the index calls (prisoner_id, started_at). Free
# (privileged) calls do not count against the allowance.
_paid = (
    select(_calls.c.started_at, _calls.c.talk_seconds)
    .join(_reservations, _reservations.c.call_id == _calls.c.id)
    .where(
        _calls.c.prisoner_id == bindparam("prisoner_id"),
        _calls.c.started_at >= bindparam("since"),
        _reservations.c.free.is_(False),
    )
    .subquery("paid")
)
_today = _paid.c.started_at >= bindparam("day_start")
_week = _paid.c.started_at >= bindparam("week_start")
_usage = select(
    func.count().filter(_today).label("calls_today"),
    func.coalesce(func.sum(_paid.c.talk_seconds).filter(_today), 0).label("seconds_today"),
    func.coalesce(func.sum(_paid.c.talk_seconds).filter(_week), 0).label("seconds_week"),
).subquery("usage")
_in_progress = exists().where(
    _calls.c.prisoner_id == bindparam("prisoner_id"), _calls.c.ended_at.is_(None)
)
# Everything a decision reads about the prisoner, in one statement: a row per contact (or one
# with NULL contact columns), each with the prisoner's money, use, wing and own limit. The
# aggregate ``usage`` always has its one row, so the prisoner's row is there when they are.
FACTS = select(
    _prisoners.c.max_call_s,
    _cells.c.wing,
    _accounts.c.balance_pence,
    _accounts.c.reserved_pence,
    _in_progress.label("in_progress"),
    _usage.c.calls_today,
    _usage.c.seconds_today,
    _usage.c.seconds_week,
    _contacts.c.number,
    _contacts.c.kind,
    _contacts.c.status,
    _contacts.c.label,
    _contacts.c.max_call_s.label("contact_max_s"),
).select_from(
    _usage.join(_prisoners, _prisoners.c.id == bindparam("prisoner_id"))
    .outerjoin(_cells, _cells.c.id == _prisoners.c.cell_id)
    .outerjoin(_accounts, _accounts.c.prisoner_id == _prisoners.c.id)
    .outerjoin(_contacts, _contacts.c.prisoner_id == _prisoners.c.id)
)

_cell_of = select(_cells.c.id).where(_cells.c.name == bindparam("cell")).scalar_subquery()
INSERT_DECISION = (
    insert(_decisions).values(cell_id=_cell_of).returning(_decisions.c.id, _decisions.c.cell_id)
)
INSERT_CALL = insert(_calls).returning(_calls.c.id)
END_CALL = (
    update(_calls)
    .where(_calls.c.uniqueid == bindparam("call_uniqueid"), _calls.c.ended_at.is_(None))
    .values(ended_at=bindparam("at"), hangup_cause=bindparam("cause"))
)
OPEN_CALLS = select(_calls.c.uniqueid).where(_calls.c.ended_at.is_(None))


def engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine the sessions are bound to (the call path runs on its connections)."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the call store needs sessions bound to an AsyncEngine")
    return bind


async def prisoner_facts(
    conn: AsyncConnection, prisoner_id: int, day_start: datetime, week_start: datetime
) -> PrisonerFacts:
    params = {
        "prisoner_id": prisoner_id,
        "since": min(day_start, week_start),
        "day_start": day_start,
        "week_start": week_start,
    }
    rows = (await conn.execute(FACTS, params)).all()
    if not rows:
        raise LookupError(f"no prisoner {prisoner_id}")
    first = rows[0]
    contacts = tuple(
        Contact(
            number=r.number,
            kind=ContactKind(r.kind),
            status=ContactStatus(r.status),
            label=r.label,
        )
        for r in rows
        if r.number is not None
    )
    balance, reserved = first.balance_pence or 0, first.reserved_pence or 0
    return PrisonerFacts(
        contacts=contacts,
        contact_max_s={
            r.number: r.contact_max_s for r in rows if r.number and r.contact_max_s is not None
        },
        call_in_progress=bool(first.in_progress),
        billing=BillingContext(
            available_pence=balance - reserved,
            usage=Usage(
                calls_today=int(first.calls_today),
                seconds_today=int(first.seconds_today),
                seconds_this_week=int(first.seconds_week),
            ),
            wing=first.wing or "",
            prisoner_max_s=first.max_call_s,
        ),
    )


class SqlCallUnit:
    """services' CallUnit on one connection (``SqlCallStore.unit()``): the reads in autocommit
    (each one statement that sees what is committed, no BEGIN or ROLLBACK around it), the
    decision's write in a transaction of its own."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def handset(self, sip_username: str) -> Handset | None:
        row = (await self.conn.execute(HANDSET, {"sip_username": sip_username})).first()
        if row is None:
            return None
        return Handset(cell=row.name, sip_username=row.sip_username, enabled=bool(row.enabled))

    async def pin_facts(self, cell: str) -> PinFacts:
        return await pin_facts(self.conn, cell)

    async def prisoner_facts(
        self, prisoner_id: int, day_start: datetime, week_start: datetime
    ) -> PrisonerFacts:
        return await prisoner_facts(self.conn, prisoner_id, day_start, week_start)

    async def record(self, record: DecisionRecord) -> Reason | None:
        if self.conn.dialect.name == "postgresql":
            # One statement, atomic by itself, in the unit's autocommit (decision_sql.py).
            return await _write_one(self.conn, record)
        # Out of autocommit for the write (the reads' block ended first: nothing to commit);
        # the pool puts the connection back in its default level when it is returned.
        await self.conn.commit()
        level = self.conn.default_isolation_level  # the database's own: READ COMMITTED on PG
        writing = await self.conn.execution_options(isolation_level=level)
        try:
            async with writing.begin():
                await _write(writing, record)
        except _Refused as refused:
            return refused.reason
        finally:
            await self.conn.execution_options(isolation_level="AUTOCOMMIT")
        return None


class SqlCallStore(SqlPinStore):
    """The decision's records; the PIN lockout's are SqlPinStore's (pin_store.py)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.engine = engine_of(sessions)
        # A unit starts in autocommit (its reads); its write goes back to the default level.
        self._units = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlCallUnit]:
        """One connection for one step (never held while the caller keys)."""
        async with self._units.connect() as conn:
            yield SqlCallUnit(conn)

    async def record(self, record: DecisionRecord) -> Reason | None:
        """A decision stored in a unit of its own."""
        async with self.unit() as unit:
            return await unit.record(record)

    async def end_call(self, uniqueid: str, cause: str, at: datetime) -> bool:
        # One UPDATE, atomic by itself: in autocommit, no BEGIN and COMMIT round trips.
        async with self._units.connect() as conn:
            params = {"call_uniqueid": uniqueid, "at": at, "cause": cause[:64]}
            result = await conn.execute(END_CALL, params)
            return bool(result.rowcount)

    async def open_calls(self) -> Sequence[str]:
        async with self.unit() as reads:
            return list((await reads.conn.execute(OPEN_CALLS)).scalars())


def _decision(record: DecisionRecord) -> dict[str, Any]:
    d, a = record.decision, record.attempt
    return {
        "cell": record.handset.cell if record.handset is not None else None,
        "at": record.at,
        "handset": a.endpoint[:64],
        "prisoner_id": record.prisoner.id if record.prisoner else None,
        "dialled": a.dialled[:MAX_DIALLED],
        "number": d.number,
        "outcome": d.outcome.value,
        "reason": d.reason.value,
        "detail": d.detail,
        "privileged": d.privileged,
        "channel": a.channel[:128],
        "uniqueid": a.uniqueid[:64],
        "sip_call_id": a.sip_call_id[:255],
        "decision_ms": record.decision_ms,
    }


async def _write_one(conn: AsyncConnection, record: DecisionRecord) -> Reason | None:
    """PostgreSQL: the decision in one statement, the allowed call's four rows included
    (decision_sql.py); the reason it was refused at the write, or None."""
    d = record.decision
    decision = _decision(record)
    if d.outcome is not Outcome.ALLOW:
        await conn.execute(INSERT_DECISION, decision)
        return None
    plan = record.plan
    assert record.prisoner is not None and d.number
    assert plan is not None, "an allowed call needs its limit and price"
    held, rounding = ledger.checked_reservation(
        plan.limit.reserve_pence, plan.limit.seconds, plan.rate, plan.rounding, plan.free
    )
    params = {
        **decision,
        "amount": held,
        "recording_note": not_recorded_note(d),
        "max_seconds": plan.limit.seconds,
        "rate": plan.rate,
        "destination_class": plan.destination_class,
        "rounding": str(rounding),
        "free": plan.free,
    }
    try:
        call_id = await write_allowed(conn, params)
    except IntegrityError:  # the one active call of a prisoner (uq_calls_one_active_per_prisoner)
        return Reason.CALL_IN_PROGRESS
    return None if call_id is not None else Reason.INSUFFICIENT_CREDIT


async def _write(conn: AsyncConnection, record: DecisionRecord) -> None:
    """The decision, and for an allowed call its call and reservation (raises _Refused)."""
    d, a = record.decision, record.attempt
    decision = _decision(record)
    decision_id, cell_id = (await conn.execute(INSERT_DECISION, decision)).one()
    if d.outcome is not Outcome.ALLOW:
        return
    plan = record.plan
    assert record.prisoner is not None and cell_id is not None and d.number
    assert plan is not None, "an allowed call needs its limit and price"
    call = {
        "decision_id": decision_id,
        "prisoner_id": record.prisoner.id,
        "cell_id": cell_id,
        "number": d.number,
        "privileged": d.privileged,
        "channel": a.channel[:128],
        "uniqueid": a.uniqueid[:64],
        "started_at": record.at,
        "recording_note": not_recorded_note(d),
    }
    try:
        call_id = (await conn.execute(INSERT_CALL, call)).scalar_one()
    except IntegrityError:  # the one active call of a prisoner (uq_calls_one_active_per_prisoner)
        raise _Refused(Reason.CALL_IN_PROGRESS) from None
    held = await ledger.reserve(
        conn,
        record.prisoner.id,
        call_id,
        plan.limit.reserve_pence,
        max_seconds=plan.limit.seconds,
        rate=plan.rate,
        destination_class=plan.destination_class,
        rounding=plan.rounding,
        free=plan.free,
        new_call=True,  # opened just above, for this prisoner
    )
    if not held:
        raise _Refused(Reason.INSUFFICIENT_CREDIT)
