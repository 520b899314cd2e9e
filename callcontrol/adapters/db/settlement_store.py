"""The calls to settle, and their settlement, on SQLAlchemy (implements SettlementStore)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import Reservation
from callcontrol.domain.call_end import CallEnd
from callcontrol.domain.tariffs import Rounding
from callcontrol.services.settle import OpenCall, Settlement


def _unsettled() -> Select[Any]:
    return (
        select(
            m.Call.id,
            m.Call.uniqueid,
            m.Call.channel,
            m.Call.prisoner_id,
            m.Call.number,
            m.Call.started_at,
            Reservation.rate,
            Reservation.rounding,
            Reservation.free,
            Reservation.max_seconds,
            Reservation.amount_pence,
        )
        .join(Reservation, Reservation.call_id == m.Call.id, isouter=True)
        .where(m.Call.settled_at.is_(None))
    )


def _open_call(row: Any) -> OpenCall:
    return OpenCall(
        call_id=row.id,
        uniqueid=row.uniqueid,
        channel=row.channel,
        prisoner_id=row.prisoner_id,
        number=row.number,
        started_at=row.started_at,
        rate=row.rate or 0,
        rounding=Rounding(row.rounding or Rounding.PER_SECOND),
        # A call from before reservations existed was never priced: it costs nothing.
        free=bool(row.free) if row.rate is not None else True,
        max_seconds=row.max_seconds or 0,
        reserved_pence=row.amount_pence or 0,
    )


class SqlSettlementStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def open_call(self, uniqueid: str) -> OpenCall | None:
        async with self.sessions() as s:
            row = (await s.execute(_unsettled().where(m.Call.uniqueid == uniqueid))).first()
            return _open_call(row) if row else None

    async def unsettled_calls(self) -> Sequence[OpenCall]:
        async with self.sessions() as s:
            return [_open_call(r) for r in await s.execute(_unsettled().order_by(m.Call.id))]

    async def settle(self, call: OpenCall, end: CallEnd, settlement: Settlement) -> bool:
        async with self.sessions.begin() as s:
            # Lock the call: of two reports of one end (hangup handler, journal) one wins.
            settled = await s.scalar(
                select(m.Call.settled_at).where(m.Call.id == call.call_id).with_for_update()
            )
            if settled is not None:
                return False
            has_reservation = await s.scalar(
                select(Reservation.id).where(Reservation.call_id == call.call_id)
            )
            outcome = {
                "talk_seconds": settlement.talk_seconds,
                "answered_at": end.accepted_at,
                "dial_status": end.dial_status,
                "disconnect_cause": end.hangup_cause,
                "ended_by": settlement.ended_by,
                "accepted": settlement.accepted,
            }
            if has_reservation is not None:
                await ledger.settle(s, call.call_id, settlement.charge_pence, **outcome)
            else:
                await s.execute(
                    update(m.Call)
                    .where(m.Call.id == call.call_id)
                    .values(charge_pence=0, settled_at=m.utcnow(), **outcome)
                )
            await s.execute(
                update(m.Call)
                .where(m.Call.id == call.call_id, m.Call.ended_at.is_(None))
                .values(ended_at=end.ended_at, hangup_cause=end.hangup_cause[:64])
            )
        return True
