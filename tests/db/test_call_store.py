"""The decision's store on real databases: what it reads, and one active call per prisoner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.domain.limits import CallLimit
from callcontrol.domain.model import Decision, Handset, Outcome, Prisoner, Reason
from callcontrol.domain.tariffs import Rounding
from callcontrol.operator_services import session_services
from callcontrol.services.authorise import CallAttempt, CallPlan, DecisionRecord
from tests.conftest import TESTER

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_database"
    return request.getfixturevalue(fixture)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlCallStore]:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        cell = m.Cell(name="A1-01", sip_username="A1-01", sip_md5_cred="0" * 32)
        s.add(cell)
        await s.flush()
        s.add(
            m.Prisoner(
                prison_number="A1234BC", name="John Smith", pin_hash="h1$00", cell_id=cell.id
            )
        )
        s.add(m.GlobalNumber(number="116123", policy="allowed", privileged=True))
    yield SqlCallStore(sessions)
    await engine.dispose()


def allow(store_prisoner: Prisoner, uniqueid: str, reserve: int = 0) -> DecisionRecord:
    plan = CallPlan(
        CallLimit(600, reserve, "site_max"),
        310,
        "uk_landline",
        Rounding.PER_SECOND,
        free=reserve == 0,
    )
    return DecisionRecord(
        attempt=CallAttempt("A1-01", "02079460000", f"PJSIP/A1-01-{uniqueid}", uniqueid, "cid"),
        decision=Decision(Outcome.ALLOW, Reason.APPROVED_CONTACT, number="+442079460000"),
        handset=Handset("A1-01", "A1-01", True),
        prisoner=store_prisoner,
        at=NOW,
        decision_ms=1.0,
        plan=plan,
    )


async def test_reads_what_the_decision_needs(store: SqlCallStore) -> None:
    assert await store.handset("nobody") is None
    assert await store.handset("A1-01") == Handset("A1-01", "A1-01", True)
    (prisoner,) = await store.prisoners_in_cell("A1-01")
    assert prisoner.prison_number == "A1234BC" and prisoner.cell == "A1-01"
    assert (await store.global_numbers())["116123"].privileged is True
    await store.record_pin_failure("A1-01", NOW - timedelta(minutes=20))
    await store.record_pin_failure("A1-01", NOW)
    await store.record_pin_failure("nowhere", NOW)  # no such cell: nothing to count against
    assert await store.pin_failures_since("A1-01", NOW - timedelta(minutes=15)) == [NOW]


async def test_concurrent_allows_open_exactly_one_call(store: SqlCallStore) -> None:
    (prisoner,) = await store.prisoners_in_cell("A1-01")
    results = await asyncio.gather(*(store.record(allow(prisoner, f"1.{i}")) for i in range(8)))
    assert sorted(results, key=str) == [None] + [Reason.CALL_IN_PROGRESS] * 7
    assert await store.has_active_call(prisoner.id)
    async with store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(m.Call)) == 1
        # Only the winner's decision is stored; the losers are refused by the caller.
        assert await s.scalar(select(func.count()).select_from(m.CallDecision)) == 1
    (open_id,) = await store.open_calls()
    assert await store.end_call(open_id, "16 Normal Clearing", NOW) is True
    assert await store.end_call(open_id, "16 Normal Clearing", NOW) is False  # only once
    assert not await store.has_active_call(prisoner.id)
    assert await store.record(allow(prisoner, "2.0")) is None


async def test_an_allowed_call_reserves_its_credit_or_is_refused(store: SqlCallStore) -> None:
    (prisoner,) = await store.prisoners_in_cell("A1-01")
    async with store.sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 50, "ref-1")
    assert await store.record(allow(prisoner, "3.0", reserve=60)) is Reason.INSUFFICIENT_CREDIT
    async with store.sessions() as s:  # nothing of the refused call was kept
        assert await s.scalar(select(func.count()).select_from(m.Call)) == 0
    assert await store.record(allow(prisoner, "3.1", reserve=40)) is None
    async with store.sessions() as s:
        assert await ledger.balance(s, prisoner.id) == (50, 40, 10)


async def test_reads_inside_reading_share_one_session(store: SqlCallStore) -> None:
    checkouts = 0
    real = store.sessions

    def counting() -> object:
        nonlocal checkouts
        checkouts += 1
        return real()

    store.sessions = counting  # type: ignore[assignment]
    async with store.reading():
        (prisoner,) = await store.prisoners_in_cell("A1-01")
        await store.pin_lock_state("A1-01")
        await store.contacts(prisoner.id)
        await store.global_numbers()
        await store.has_active_call(prisoner.id)
    assert checkouts == 1
    await store.contacts(prisoner.id)  # outside the block: a session of its own
    assert checkouts == 2


async def test_the_allowance_counts_paid_calls_of_today_and_this_week(store: SqlCallStore) -> None:
    (prisoner,) = await store.prisoners_in_cell("A1-01")
    async with store.sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 5000, "ref-2")
    day, week = NOW.replace(hour=0), NOW - timedelta(days=3)
    calls = [  # (started, talk seconds, reserve: 0 is a free call)
        (NOW - timedelta(hours=1), 120, 10),  # today, paid
        (NOW - timedelta(hours=2), None, 10),  # today, paid, not settled yet
        (NOW - timedelta(hours=3), 600, 0),  # today, free: not counted
        (NOW - timedelta(days=1), 300, 10),  # this week, paid
        (NOW - timedelta(days=5), 900, 10),  # before the week
    ]
    for i, (started, talk, reserve) in enumerate(calls):
        record = allow(prisoner, f"9.{i}", reserve=reserve)
        record = DecisionRecord(**{**record.__dict__, "at": started})
        assert await store.record(record) is None
        async with store.sessions.begin() as s:
            await s.execute(
                m.Call.__table__.update()
                .where(m.Call.uniqueid == f"9.{i}")
                .values(ended_at=started, talk_seconds=talk)
            )
    ctx = await store.billing_context(prisoner.id, "+442079460000", day, week)
    assert (ctx.usage.calls_today, ctx.usage.seconds_today) == (2, 120)
    assert ctx.usage.seconds_this_week == 420
    empty = await store.billing_context(prisoner.id, "+442079460000", NOW, NOW)
    assert (empty.usage.calls_today, empty.usage.seconds_today, empty.usage.seconds_this_week) == (
        0,
        0,
        0,
    )
