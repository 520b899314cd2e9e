"""The records a call decision reads and writes, on SQLAlchemy (implements services' CallStore)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.pin_store import SqlPinStore
from callcontrol.adapters.db.tables import Reservation
from callcontrol.domain.limits import Usage
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    Decision,
    GlobalNumber,
    GlobalPolicy,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.tariffs import tariffs_by_class
from callcontrol.services.authorise import BillingContext, DecisionRecord


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
# The session that reads share inside ``SqlCallStore.reading()`` (per task: per call).
_reading: ContextVar[AsyncSession | None] = ContextVar("callcontrol_reading", default=None)


class SqlCallStore(SqlPinStore):
    """The decision's records; the PIN lockout's are SqlPinStore's (pin_store.py)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Within this block the reads share one session: one pool checkout (and its ping) and
        one transaction to close, instead of one for each read. The reads of a decision run
        back to back once the PIN is in; a block is never held across a wait for the caller.
        Writes keep their own transactions."""
        if _reading.get() is not None:
            yield
            return
        async with self.sessions() as s:
            token = _reading.set(s)
            try:
                yield
            finally:
                _reading.reset(token)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        shared = _reading.get()
        if shared is not None:
            yield shared
            return
        async with self.sessions() as s:
            yield s

    async def handset(self, sip_username: str) -> Handset | None:
        async with self._read() as s:
            cell = await s.scalar(select(m.Cell).where(m.Cell.sip_username == sip_username))
            if cell is None:
                return None
            return Handset(cell=cell.name, sip_username=cell.sip_username, enabled=cell.enabled)

    async def prisoners_in_cell(self, cell: str) -> Sequence[Prisoner]:
        async with self._read() as s:
            rows = await s.execute(
                select(m.Prisoner)
                .join(m.Cell, m.Prisoner.cell_id == m.Cell.id)
                .where(m.Cell.name == cell)
                .order_by(m.Prisoner.id)
            )
            return [
                Prisoner(
                    id=p.id,
                    prison_number=p.prison_number,
                    name=p.name,
                    pin_hash=p.pin_hash,
                    cell=cell,
                    active=p.active,
                )
                for p in rows.scalars()
            ]

    async def contacts(self, prisoner_id: int) -> Sequence[Contact]:
        async with self._read() as s:
            rows = await s.scalars(select(m.Contact).where(m.Contact.prisoner_id == prisoner_id))
            return [
                Contact(
                    number=c.number,
                    kind=ContactKind(c.kind),
                    status=ContactStatus(c.status),
                    label=c.label,
                )
                for c in rows
            ]

    async def global_numbers(self) -> Mapping[str, GlobalNumber]:
        async with self._read() as s:
            rows = await s.scalars(select(m.GlobalNumber))
            return {
                g.number: GlobalNumber(
                    number=g.number,
                    policy=GlobalPolicy(g.policy),
                    privileged=g.privileged,
                    label=g.label,
                )
                for g in rows
            }

    async def has_active_call(self, prisoner_id: int) -> bool:
        async with self._read() as s:
            found = await s.scalar(
                select(m.Call.id)
                .where(m.Call.prisoner_id == prisoner_id, m.Call.ended_at.is_(None))
                .limit(1)
            )
            return found is not None

    async def billing_context(
        self, prisoner_id: int, number: str, day_start: datetime, week_start: datetime
    ) -> BillingContext:
        async with self._read() as s:
            money = await ledger.balance(s, prisoner_id)
            prisoner = (
                await s.execute(
                    select(m.Prisoner.max_call_s, m.Cell.wing)
                    .join(m.Cell, m.Prisoner.cell_id == m.Cell.id, isouter=True)
                    .where(m.Prisoner.id == prisoner_id)
                )
            ).one()
            contact_max = await s.scalar(
                select(m.Contact.max_call_s).where(
                    m.Contact.prisoner_id == prisoner_id, m.Contact.number == number
                )
            )
            # Paid calls count against the allowance; free (privileged) ones do not.
            paid = (
                select(m.Call.started_at, m.Call.talk_seconds)
                .join(Reservation, Reservation.call_id == m.Call.id)
                .where(
                    m.Call.prisoner_id == prisoner_id,
                    m.Call.started_at >= min(day_start, week_start),
                    Reservation.free.is_(False),
                )
                .subquery()
            )
            # Today's and this week's use in one statement (they overlap: the week's calls
            # start at the earlier of the two bounds).
            is_today = paid.c.started_at >= day_start
            is_week = paid.c.started_at >= week_start
            today_calls, today_s, week_s = (
                await s.execute(
                    select(
                        func.count().filter(is_today),
                        func.coalesce(func.sum(paid.c.talk_seconds).filter(is_today), 0),
                        func.coalesce(func.sum(paid.c.talk_seconds).filter(is_week), 0),
                    )
                )
            ).one()
            tariffs = tariffs_by_class(await ledger.list_tariffs(s))
        return BillingContext(
            available_pence=money.available,
            usage=Usage(
                calls_today=int(today_calls),
                seconds_today=int(today_s),
                seconds_this_week=int(week_s or 0),
            ),
            wing=prisoner.wing or "",
            prisoner_max_s=prisoner.max_call_s,
            contact_max_s=contact_max,
            tariffs=tariffs,
        )

    async def record(self, record: DecisionRecord) -> Reason | None:
        d, a = record.decision, record.attempt
        try:
            async with self.sessions.begin() as s:
                cell_id = None
                if record.handset is not None:
                    cell_id = await s.scalar(
                        select(m.Cell.id).where(m.Cell.name == record.handset.cell)
                    )
                row = m.CallDecision(
                    at=record.at,
                    handset=a.endpoint[:64],
                    cell_id=cell_id,
                    prisoner_id=record.prisoner.id if record.prisoner else None,
                    dialled=a.dialled[:MAX_DIALLED],
                    number=d.number,
                    outcome=d.outcome.value,
                    reason=d.reason.value,
                    detail=d.detail,
                    privileged=d.privileged,
                    channel=a.channel[:128],
                    uniqueid=a.uniqueid[:64],
                    sip_call_id=a.sip_call_id[:255],
                    decision_ms=record.decision_ms,
                )
                s.add(row)
                await s.flush()
                if d.outcome is Outcome.ALLOW:
                    plan = record.plan
                    assert record.prisoner is not None and cell_id is not None and d.number
                    assert plan is not None, "an allowed call needs its limit and price"
                    call = m.Call(
                        decision_id=row.id,
                        prisoner_id=record.prisoner.id,
                        cell_id=cell_id,
                        number=d.number,
                        privileged=d.privileged,
                        channel=a.channel[:128],
                        uniqueid=a.uniqueid[:64],
                        started_at=record.at,
                        recording_note=not_recorded_note(d),
                    )
                    s.add(call)
                    try:
                        await s.flush()
                    except IntegrityError:
                        raise _Refused(Reason.CALL_IN_PROGRESS) from None
                    held = await ledger.reserve(
                        s,
                        record.prisoner.id,
                        call.id,
                        plan.limit.reserve_pence,
                        max_seconds=plan.limit.seconds,
                        rate=plan.rate,
                        destination_class=plan.destination_class,
                        rounding=plan.rounding,
                        free=plan.free,
                    )
                    if not held:
                        raise _Refused(Reason.INSUFFICIENT_CREDIT)
        except _Refused as refused:
            return refused.reason
        return None

    async def end_call(self, uniqueid: str, cause: str, at: datetime) -> bool:
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(m.Call)
                .where(m.Call.uniqueid == uniqueid, m.Call.ended_at.is_(None))
                .values(ended_at=at, hangup_cause=cause[:64])
            )
            return bool(result.rowcount)

    async def open_calls(self) -> Sequence[str]:
        async with self._read() as s:
            rows = await s.scalars(select(m.Call.uniqueid).where(m.Call.ended_at.is_(None)))
            return list(rows)
