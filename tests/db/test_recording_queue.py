"""The recording workers' claims and the calls waiting for their recording, on SQLite and
PostgreSQL (adapters/db/recording_queue.py): one worker wins each claim, however many try at
once; a claim whose lease ran out is taken over; a finished one is never taken again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.recording_queue import SqlRecordingQueue
from callcontrol.services import recordings as store
from callcontrol.services.recording_jobs import Claim
from tests.db.test_recordings import Sessions, add_call, make_wav

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


async def settle(sessions: Sessions, call_id: int, at: datetime, accepted: bool = True) -> str:
    async with sessions.begin() as s:
        await s.execute(
            update(m.Call).where(m.Call.id == call_id).values(settled_at=at, accepted=accepted)
        )
        return str(await s.scalar(select(m.Call.uniqueid).where(m.Call.id == call_id)))


async def test_a_claim_is_one_workers_until_its_lease_runs_out(sessions: Sessions) -> None:
    q = SqlRecordingQueue(sessions)
    call = await add_call(sessions)
    assert await q.claim(call, "a", T0, 60) is Claim.CLAIMED
    assert await q.claim(call, "b", T0 + timedelta(seconds=59), 60) is Claim.BUSY
    assert await q.renew(call, "a", T0 + timedelta(seconds=50), 60)  # now until T0 + 110 s
    assert not await q.renew(call, "b", T0 + timedelta(seconds=50), 60)
    assert await q.claim(call, "b", T0 + timedelta(seconds=100), 60) is Claim.BUSY
    # a died: its lease runs out, b takes the call over; a's renewals no longer hold it.
    assert await q.claim(call, "b", T0 + timedelta(seconds=111), 60) is Claim.CLAIMED
    assert not await q.renew(call, "a", T0 + timedelta(seconds=112), 60)
    await q.finish(call, "b", T0 + timedelta(seconds=120))
    assert await q.claim(call, "c", T0 + timedelta(days=1), 60) is Claim.DONE


async def test_a_failed_claim_is_given_back_for_later(sessions: Sessions) -> None:
    q = SqlRecordingQueue(sessions)
    call = await add_call(sessions)
    assert await q.claim(call, "a", T0, 60) is Claim.CLAIMED
    await q.give_back(call, "a", T0 + timedelta(seconds=30))
    assert await q.claim(call, "b", T0 + timedelta(seconds=29), 60) is Claim.BUSY
    assert await q.claim(call, "b", T0 + timedelta(seconds=31), 60) is Claim.CLAIMED
    async with sessions() as s:
        row = await s.get(m.RecordingClaim, call)
    assert row is not None and (row.worker, row.attempts) == ("b", 1)


async def test_many_workers_claiming_at_once_one_wins(db_url: str) -> None:
    """Twelve workers, each on connections of its own, claim the same calls at the same time:
    each call is claimed by exactly one (and, its lease run out, taken over by exactly one)."""
    engines = [make_engine(db_url) for _ in range(12)]
    try:
        queues = [SqlRecordingQueue(session_factory(e)) for e in engines]
        calls = [await add_call(session_factory(engines[0])) for _ in range(5)]
        for now in (T0, T0 + timedelta(seconds=61)):  # fresh claims, then takeovers
            for call in calls:
                results = await asyncio.gather(
                    *(q.claim(call, f"w{i}", now, 60) for i, q in enumerate(queues))
                )
                assert results.count(Claim.CLAIMED) == 1, results
                assert results.count(Claim.BUSY) == 11
    finally:
        for e in engines:
            await e.dispose()


async def test_the_calls_waiting(sessions: Sessions, tmp_path: Path) -> None:
    """Settled calls without recording, missing row or finished claim; from a time on, or
    all accepted ones (what an earlier run left); and a spool file's call."""
    q = SqlRecordingQueue(sessions)
    assert await q.latest_settled() is None
    old, new, unanswered, live, stored, missing, finished = [
        await add_call(sessions) for _ in range(7)
    ]
    await settle(sessions, old, T0 - timedelta(hours=1))
    await settle(sessions, new, T0 + timedelta(seconds=5))
    await settle(sessions, unanswered, T0 + timedelta(seconds=6), accepted=False)
    for call in (stored, missing, finished):
        await settle(sessions, call, T0 + timedelta(seconds=1))
    rec = await store.ingest(
        sessions, tmp_path / "store", stored, make_wav(tmp_path / "s.wav"), 24000
    )
    assert rec is not None
    await store.mark_missing(sessions, missing, "its spool file does not exist")
    assert await q.claim(finished, "w", T0, 60) is Claim.CLAIMED
    await q.finish(finished, "w", T0)
    assert await q.latest_settled() == T0 + timedelta(seconds=6)
    since = await q.settled_since(T0)
    assert [(c.call_id, c.accepted) for c in since] == [(new, True), (unanswered, False)]
    assert [c.call_id for c in await q.left_over()] == [old, new]
    async with sessions() as s:
        uid = {c: await s.scalar(select(m.Call.uniqueid).where(m.Call.id == c)) for c in (
            new, live, stored, finished)}  # fmt: skip
    found = await q.settled_call(uid[new])
    assert not isinstance(found, bool) and found is not None and found.call_id == new
    assert await q.settled_call(uid[live]) is True  # not settled yet
    assert await q.settled_call(uid[finished]) is True  # a worker dealt with it
    # stored, but no worker finished it (a crash before): its leftover file is to be removed
    found = await q.settled_call(uid[stored])
    assert not isinstance(found, bool) and found is not None and found.call_id == stored
    assert await q.settled_call("no-such-call") is None
