"""The recordings waiting, from the database (implements services/recording_jobs.py's
RecordingQueue): settled calls with neither recording nor missing-recording row, and the
workers' claims on them (``recording_claims``, migration 0013).

A claim is one short transaction: an INSERT that does nothing if the call has a row already,
then, if it did nothing, an UPDATE of that row only where it is not done and its lease has run
out. On PostgreSQL the INSERT ... ON CONFLICT and the UPDATE's row lock make two workers that
try at once see each other's claim (the second UPDATE re-reads the row once the first commits,
and finds the lease renewed); on SQLite the first write takes the database's lock. Either way
one worker wins. Leases are the workers' own clocks: keep the machines' clocks in step (NTP),
well within a lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.tables import Call, MissingRecording, Recording, RecordingClaim
from callcontrol.services.recording_jobs import Claim, SettledCall

C = RecordingClaim


def _waiting() -> Select[Any]:
    """Settled calls with no recording, no missing-recording row and no finished claim."""
    return (
        select(Call.id, Call.uniqueid, Call.privileged, Call.accepted, Call.settled_at)
        .outerjoin(Recording, Recording.call_id == Call.id)
        .outerjoin(MissingRecording, MissingRecording.call_id == Call.id)
        .outerjoin(C, C.call_id == Call.id)
        .where(
            Call.settled_at.is_not(None),
            Recording.id.is_(None),
            MissingRecording.id.is_(None),
            C.done_at.is_(None),
        )
        .order_by(Call.settled_at, Call.id)
    )


def _settled(row: Any) -> SettledCall:
    privileged, accepted = bool(row.privileged), bool(row.accepted)
    return SettledCall(row.id, row.uniqueid, privileged, accepted, row.settled_at)


class SqlRecordingQueue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def latest_settled(self) -> datetime | None:
        async with self.sessions() as s:
            return await s.scalar(select(func.max(Call.settled_at)))

    async def settled_since(self, since: datetime) -> Sequence[SettledCall]:
        async with self.sessions() as s:
            rows = (await s.execute(_waiting().where(Call.settled_at >= since))).all()
        return [_settled(r) for r in rows]

    async def left_over(self) -> Sequence[SettledCall]:
        async with self.sessions() as s:
            rows = (await s.execute(_waiting().where(Call.accepted.is_(True)))).all()
        return [_settled(r) for r in rows]

    async def settled_call(self, uniqueid: str) -> SettledCall | None | bool:
        """Also a call whose recording is stored but whose file a crash left in the spool:
        ingesting it again removes the file (services/recordings.py ``ingest``)."""
        query = (
            select(Call.id, Call.uniqueid, Call.privileged, Call.accepted, Call.settled_at)
            .outerjoin(C, C.call_id == Call.id)
            .where(Call.uniqueid == uniqueid, C.done_at.is_(None))
        )
        async with self.sessions() as s:
            known = await s.scalar(select(func.count()).where(Call.uniqueid == uniqueid))
            row = (await s.execute(query)).first()
        if row is not None and row.settled_at is not None:
            return _settled(row)
        return True if known else None

    async def claim(self, call_id: int, worker: str, now: datetime, lease_s: float) -> Claim:
        until = now + timedelta(seconds=lease_s)
        async with self.sessions.begin() as s:
            dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
            inserted = await s.execute(
                dialect.insert(C)
                .values(call_id=call_id, worker=worker, claimed_at=now, lease_until=until)
                .on_conflict_do_nothing(index_elements=["call_id"])
            )
            if inserted.rowcount:  # type: ignore[attr-defined]
                return Claim.CLAIMED
            taken = await s.execute(
                update(C)
                .where(C.call_id == call_id, C.done_at.is_(None), C.lease_until < now)
                .values(worker=worker, claimed_at=now, lease_until=until)
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                return Claim.CLAIMED
            done = await s.scalar(select(C.done_at).where(C.call_id == call_id))
        return Claim.BUSY if done is None else Claim.DONE

    async def renew(self, call_id: int, worker: str, now: datetime, lease_s: float) -> bool:
        until = now + timedelta(seconds=lease_s)
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(C)
                .where(C.call_id == call_id, C.worker == worker, C.done_at.is_(None))
                .values(lease_until=until)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def finish(self, call_id: int, worker: str, now: datetime) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(C).where(C.call_id == call_id).values(done_at=now))

    async def give_back(self, call_id: int, worker: str, retry_at: datetime) -> None:
        async with self.sessions.begin() as s:
            await s.execute(
                update(C)
                .where(C.call_id == call_id, C.worker == worker, C.done_at.is_(None))
                .values(worker="", lease_until=retry_at, attempts=C.attempts + 1)
            )
