"""The call path's settlement (SqlSettlementStore and settlement_sql.py) on SQLite and
PostgreSQL: each call settled exactly once, whatever repeats or races, never another call, and
never half: the call closed, its charge appended to the ledger and its reservation released
together or not at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.adapters.db.tables import LedgerEntry, Reservation
from callcontrol.domain.call_end import CallEnd
from callcontrol.domain.tariffs import Rounding
from callcontrol.services.settle import OpenCall, Settler
from tests.db import test_ledger
from tests.db.test_ledger import (
    Sessions,
    add_call,
    add_prisoner,
    entries,
    number_of,
    reserve,
    state,
    topup,
)

ACCEPTED = datetime(2026, 11, 28, 12, 0, 10, tzinfo=UTC)
# The ledger tests' fixtures: every test here runs on SQLite and on PostgreSQL.
db_url, sessions = test_ledger.db_url, test_ledger.sessions


def settler(sessions: Sessions) -> Settler:
    return Settler(SqlSettlementStore(sessions), free_drop_s=60, clock=lambda: ACCEPTED)


async def open_call(sessions: Sessions, pence: int = 500, held: int = 200) -> tuple[int, int, str]:
    """A prisoner with ``pence`` and an open call reserving ``held`` (at 310 hundredths of a
    penny a minute); returns (prisoner id, call id, the call's unique id)."""
    pid = await add_prisoner(sessions)
    await topup(sessions, await number_of(sessions, pid), pence, f"R-{pid}")
    call_id = await add_call(sessions, pid)
    assert await reserve(sessions, pid, call_id, held)
    async with sessions() as s:
        uniqueid = await s.scalar(select(m.Call.uniqueid).where(m.Call.id == call_id))
    assert uniqueid is not None
    return pid, call_id, uniqueid


def end_of(uniqueid: str, talked_s: int = 120) -> CallEnd:
    """The called party hung up after ``talked_s`` seconds of talk (at 310 hundredths of a
    penny a minute, 2 minutes cost 6.2p: charged 6p)."""
    ended = ACCEPTED + timedelta(seconds=talked_s)
    return CallEnd(uniqueid, ACCEPTED, ended, "ANSWER", "16", "PJSIP/x")


async def call_row(sessions: Sessions, call_id: int) -> m.Call:
    async with sessions() as s:
        call = await s.get(m.Call, call_id)
    assert call is not None
    return call


async def reservation_status(sessions: Sessions, call_id: int) -> str | None:
    async with sessions() as s:
        return await s.scalar(select(Reservation.status).where(Reservation.call_id == call_id))


async def charges(sessions: Sessions, call_id: int) -> list[tuple[int, int]]:
    async with sessions() as s:
        rows = await s.execute(
            select(LedgerEntry.amount_pence, LedgerEntry.balance_after).where(
                LedgerEntry.call_id == call_id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_call_is_settled_once_and_a_second_end_changes_nothing(
    sessions: Sessions,
) -> None:
    pid, call_id, uniqueid = await open_call(sessions)
    done = await settler(sessions).settle(end_of(uniqueid), "hangup handler")
    assert done is not None and (done.call_id, done.talk_seconds, done.charge_pence) == (
        call_id, 120, 6,
    )  # fmt: skip
    assert await state(sessions, pid) == (494, 0, 494)
    assert await charges(sessions, call_id) == [(-6, 494)]
    assert await reservation_status(sessions, call_id) == "settled"
    call = await call_row(sessions, call_id)
    assert (call.charge_pence, call.talk_seconds, call.ended_by, call.accepted) == (
        6, 120, "called", True,
    )  # fmt: skip
    assert (call.ended_at, call.hangup_cause, call.dial_status) == (
        ACCEPTED + timedelta(seconds=120), "16", "ANSWER",
    )  # fmt: skip
    settled_at = call.settled_at
    assert settled_at is not None
    # The journal's copy of the end, and a forged later one: nothing changes.
    for again in (end_of(uniqueid), end_of(uniqueid, talked_s=500)):
        assert await settler(sessions).settle(again, "journal") is None
        store = SqlSettlementStore(sessions)
        assert not await store.settle(done_call(call_id, uniqueid), again, done)
    assert await state(sessions, pid) == (494, 0, 494) and await entries(sessions) == 2
    assert (await call_row(sessions, call_id)).settled_at == settled_at


def done_call(call_id: int, uniqueid: str) -> OpenCall:
    """The call as read before it was settled (a report racing another)."""
    return OpenCall(
        call_id, uniqueid, "PJSIP/x", 0, "+44", ACCEPTED, 310, Rounding.PER_SECOND, False,
        600, 200,
    )  # fmt: skip


async def test_concurrent_ends_of_one_call_settle_it_once(sessions: Sessions) -> None:
    pid, call_id, uniqueid = await open_call(sessions)
    results = await asyncio.gather(
        *(settler(sessions).settle(end_of(uniqueid), "race") for _ in range(6))
    )
    assert sum(r is not None for r in results) == 1
    assert await state(sessions, pid) == (494, 0, 494)
    assert await charges(sessions, call_id) == [(-6, 494)]


async def test_an_end_settles_its_own_call_and_no_other(sessions: Sessions) -> None:
    pid_a, call_a, uniqueid_a = await open_call(sessions, pence=500, held=200)
    pid_b, call_b, _ = await open_call(sessions, pence=800, held=300)
    # A forged end naming no call of ours settles nothing.
    assert await settler(sessions).settle(end_of("9999.1"), "hangup handler") is None
    done = await settler(sessions).settle(end_of(uniqueid_a), "hangup handler")
    assert done is not None and done.call_id == call_a
    assert await state(sessions, pid_a) == (494, 0, 494)
    assert await state(sessions, pid_b) == (800, 300, 500)  # untouched: still in progress
    assert await reservation_status(sessions, call_b) == "open"
    other = await call_row(sessions, call_b)
    assert (other.settled_at, other.ended_at, other.charge_pence) == (None, None, None)
    assert await charges(sessions, call_b) == []


async def test_never_more_than_reserved_and_an_earlier_end_is_kept(sessions: Sessions) -> None:
    pid, call_id, uniqueid = await open_call(sessions, pence=500, held=5)
    hung_up = ACCEPTED + timedelta(seconds=3000)
    async with sessions.begin() as s:  # AMI saw the hangup first and recorded the end
        call = await s.get(m.Call, call_id)
        assert call is not None
        call.ended_at, call.hangup_cause = hung_up, "16 Normal Clearing"
    done = await settler(sessions).settle(end_of(uniqueid, talked_s=3600), "journal")
    assert done is not None and done.charge_pence == 5  # 186p asked, 5p held
    assert await state(sessions, pid) == (495, 0, 495)
    call = await call_row(sessions, call_id)
    assert (call.charge_pence, call.ended_at, call.hangup_cause) == (
        5, hung_up, "16 Normal Clearing",
    )  # fmt: skip


async def test_a_settlement_that_fails_applies_nothing(sessions: Sessions) -> None:
    pid, call_id, uniqueid = await open_call(sessions)
    # The charge's idempotency key taken by another prisoner's entry: the append fails.
    other = await add_prisoner(sessions)
    async with sessions.begin() as s:
        s.add(
            LedgerEntry(
                prisoner_id=other,
                kind="topup",
                amount_pence=1,
                balance_after=1,
                idempotency_key=f"call:{call_id}:charge",
                reference="x",
                created_by="t",
            )  # fmt: skip
        )
        account = m.Account(prisoner_id=other, balance_pence=1, reserved_pence=0)
        s.add(account)
    with pytest.raises(Exception, match="(?i)unique"):
        await settler(sessions).settle(end_of(uniqueid), "hangup handler")
    # Nothing of it happened: the call is still open, its money still held.
    assert await state(sessions, pid) == (500, 200, 300)
    assert await reservation_status(sessions, call_id) == "open"
    call = await call_row(sessions, call_id)
    assert (call.settled_at, call.charge_pence, call.ended_at) == (None, None, None)
    assert await SqlSettlementStore(sessions).open_call(uniqueid) is not None


async def test_a_call_without_reservation_is_closed_at_nothing(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions)
    await topup(sessions, await number_of(sessions, pid), 500, f"R-{pid}")
    call_id = await add_call(sessions, pid)
    async with sessions() as s:
        uniqueid = await s.scalar(select(m.Call.uniqueid).where(m.Call.id == call_id))
    assert uniqueid is not None
    done = await settler(sessions).settle(end_of(uniqueid), "hangup handler")
    assert done is not None and done.charge_pence == 0
    assert (await call_row(sessions, call_id)).charge_pence == 0
    assert await state(sessions, pid) == (500, 0, 500) and await charges(sessions, call_id) == []
    assert await settler(sessions).settle(end_of(uniqueid), "journal") is None
