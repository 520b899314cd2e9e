"""The calls to settle, and their settlement, on SQLAlchemy (implements SettlementStore).

The call path's statements are Core statements built once (no ORM loading, no unit of work):
a settlement reads its call in one statement and writes everything in one more on PostgreSQL
(settlement_sql.py), on one pooled connection. On PostgreSQL that connection runs in
autocommit: the read needs no transaction and the write is one atomic statement, so no BEGIN
and COMMIT round trips. On SQLite the read and the writes share one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from callcontrol.adapters.db.settlement_sql import Outcome, settle_call
from callcontrol.adapters.db.tables import Call, Reservation, utcnow
from callcontrol.domain.call_end import CallEnd
from callcontrol.domain.tariffs import Rounding
from callcontrol.services.settle import OpenCall, Settlement

_UNSETTLED = (
    select(
        Call.id,
        Call.uniqueid,
        Call.channel,
        Call.prisoner_id,
        Call.number,
        Call.started_at,
        Reservation.rate,
        Reservation.rounding,
        Reservation.free,
        Reservation.max_seconds,
        Reservation.amount_pence,
    )
    .join(Reservation, Reservation.call_id == Call.id, isouter=True)
    .where(Call.settled_at.is_(None))
)
_OPEN_CALL = _UNSETTLED.where(Call.uniqueid == bindparam("uniqueid")).limit(1)
_ALL_UNSETTLED = _UNSETTLED.order_by(Call.id)


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
        self.engine: AsyncEngine = sessions.kw["bind"]

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """One pooled connection: autocommit on PostgreSQL (every write is one statement),
        one transaction on SQLite (committed at the end, rolled back on an exception)."""
        if self.engine.dialect.name == "postgresql":
            async with self.engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            async with self.engine.begin() as conn:
                yield conn

    async def open_call(self, uniqueid: str) -> OpenCall | None:
        async with self._connection() as conn:  # one read: autocommit on PostgreSQL
            row = (await conn.execute(_OPEN_CALL, {"uniqueid": uniqueid})).first()
            return _open_call(row) if row else None

    async def unsettled_calls(self) -> Sequence[OpenCall]:
        async with self.engine.connect() as conn:
            return [_open_call(r) for r in await conn.execute(_ALL_UNSETTLED)]

    async def settle(self, call: OpenCall, end: CallEnd, settlement: Settlement) -> bool:
        async with self._connection() as conn:
            return await _write(conn, call, end, settlement) is not None

    async def settle_end(
        self, end: CallEnd, price: Callable[[OpenCall], Settlement]
    ) -> tuple[OpenCall, Settlement] | None:
        async with self._connection() as conn:
            row = (await conn.execute(_OPEN_CALL, {"uniqueid": end.uniqueid})).first()
            if row is None:
                return None
            call = _open_call(row)
            settlement = price(call)
            charged = await _write(conn, call, end, settlement)
            if charged is None:
                return None
            return call, replace(settlement, charge_pence=charged)


async def _write(
    conn: AsyncConnection, call: OpenCall, end: CallEnd, settlement: Settlement
) -> int | None:
    outcome = Outcome(
        answered_at=end.accepted_at,
        dial_status=end.dial_status,
        disconnect_cause=end.hangup_cause,
        ended_by=settlement.ended_by,
        accepted=settlement.accepted,
        ended_at=end.ended_at,
        hangup_cause=end.hangup_cause,
    )
    return await settle_call(
        conn, call.call_id, settlement.charge_pence, settlement.talk_seconds, outcome, utcnow()
    )
