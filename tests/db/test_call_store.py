"""The decision's store on real databases: what it reads (each step in one statement), what it
writes (in one transaction), and one active call per prisoner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.globals_store import SqlGlobals
from callcontrol.domain.decide import CallPlan, PrisonerFacts
from callcontrol.domain.limits import CallLimit
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    Decision,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.pin_lockout import LockState
from callcontrol.domain.tariffs import Rounding
from callcontrol.operator_services import session_services
from callcontrol.services.authorise import CallAttempt, DecisionRecord
from callcontrol.services.errors import Refused
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


class Statements:
    """The SQL statements sent on the store's engine, and its pool checkouts."""

    def __init__(self, store: SqlCallStore) -> None:
        self.sent: list[str] = []
        self.checkouts = 0
        engine = store.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._sent)
        event.listen(engine.pool, "checkout", self._checkout)

    def _sent(self, conn, cursor, statement: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        self.sent.append(statement.split(None, 1)[0].upper())

    def _checkout(self, *args: object) -> None:
        self.checkouts += 1

    def clear(self) -> None:
        self.sent.clear()
        self.checkouts = 0


async def the_prisoner(store: SqlCallStore) -> Prisoner:
    async with store.unit() as reads:
        (prisoner,) = (await reads.pin_facts("A1-01")).prisoners
    return prisoner


async def facts(store: SqlCallStore, prisoner: Prisoner, day=NOW, week=NOW) -> PrisonerFacts:  # type: ignore[no-untyped-def]
    async with store.unit() as reads:
        return await reads.prisoner_facts(prisoner.id, day, week)


async def test_reads_what_the_decision_needs(store: SqlCallStore) -> None:
    async with store.unit() as reads:
        assert await reads.handset("nobody") is None
        assert await reads.handset("A1-01") == Handset("A1-01", "A1-01", True)
        pin = await reads.pin_facts("A1-01")
        assert await reads.pin_facts("nowhere") == type(pin)(LockState(), [])
    (prisoner,) = pin.prisoners
    assert prisoner.prison_number == "A1234BC" and prisoner.cell == "A1-01"
    assert pin.state == LockState()
    globals_source = SqlGlobals(store.sessions)
    assert (await globals_source.global_numbers())["116123"].privileged is True
    assert (await globals_source.tariffs())["uk_landline"].rate == 310
    await store.record_pin_failure("A1-01", NOW - timedelta(minutes=20))
    await store.record_pin_failure("A1-01", NOW)
    await store.record_pin_failure("nowhere", NOW)  # no such cell: nothing to count against
    assert await store.pin_failures_since("A1-01", NOW - timedelta(minutes=15)) == [NOW]


async def test_a_pin_try_reads_the_lockout_and_the_cell_in_one_statement(
    store: SqlCallStore,
) -> None:
    async with store.sessions.begin() as s:
        cell_id = await s.scalar(select(m.Cell.id).where(m.Cell.name == "A1-01"))
        s.add(
            m.Prisoner(prison_number="B7654CD", name="Cell Mate", pin_hash="h1$01", cell_id=cell_id)
        )
        s.add(m.HandsetPinState(cell_id=cell_id, locked_until=NOW, level=2, counting_since=NOW))
    sql = Statements(store)
    async with store.unit() as reads:
        pin = await reads.pin_facts("A1-01")
    assert (sql.sent, sql.checkouts) == (["SELECT"], 1)
    assert [p.prison_number for p in pin.prisoners] == ["A1234BC", "B7654CD"]
    assert pin.state == LockState(NOW, 2, NOW, None)


async def test_the_facts_of_a_decision_are_one_statement(store: SqlCallStore) -> None:
    prisoner = await the_prisoner(store)
    empty = await facts(store, prisoner)  # no account, no contact, no call
    assert empty.contacts == () and empty.contact_max_s == {}
    assert (empty.billing.available_pence, empty.call_in_progress) == (0, False)
    async with store.sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 500, "ref-f")
        s.add_all(
            [
                m.Contact(prisoner_id=prisoner.id, number="+442079460000", kind="social",
                          status="approved", max_call_s=300),
                m.Contact(prisoner_id=prisoner.id, number="+442079460999", kind="legal",
                          status="pending", label="solicitor"),
            ]
        )  # fmt: skip
        await s.execute(
            m.Prisoner.__table__.update().where(m.Prisoner.id == prisoner.id).values(max_call_s=900)
        )
        await s.execute(m.Cell.__table__.update().values(wing="A"))
    assert await store.record(allow(prisoner, "5.0", reserve=93)) is None
    sql = Statements(store)
    got = await facts(store, prisoner)
    assert (sql.sent, sql.checkouts) == (["SELECT"], 1)
    assert sorted(got.contacts, key=lambda c: c.number) == [
        Contact("+442079460000", ContactKind.SOCIAL, ContactStatus.APPROVED),
        Contact("+442079460999", ContactKind.LEGAL, ContactStatus.PENDING, "solicitor"),
    ]
    assert got.contact_max_s == {"+442079460000": 300}
    assert got.call_in_progress is True
    b = got.billing
    assert (b.available_pence, b.wing, b.prisoner_max_s) == (500 - 93, "A", 900)


async def test_an_allowed_decision_is_written_in_one_transaction(store: SqlCallStore) -> None:
    prisoner = await the_prisoner(store)
    async with store.sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 100, "ref-w")
    sql = Statements(store)
    assert await store.record(allow(prisoner, "6.0", reserve=93)) is None
    # the decision, the call, the account's hold, the reservation: one checkout, no read; on
    # PostgreSQL one statement (decision_sql.py), elsewhere four in a transaction
    pg = store.engine.dialect.name == "postgresql"
    written = ["WITH"] if pg else ["INSERT", "INSERT", "UPDATE", "INSERT"]
    assert (sql.sent, sql.checkouts) == (written, 1)
    async with store.sessions() as s:
        await ledger.verify_account(s, prisoner.id)
        assert await ledger.balance(s, prisoner.id) == (100, 93, 7)
        call = await s.scalar(select(m.Call).where(m.Call.uniqueid == "6.0"))
        assert call is not None
        decision = await s.get(m.CallDecision, call.decision_id)
        assert decision is not None and decision.cell_id == call.cell_id is not None
        res = await s.scalar(select(m.Reservation).where(m.Reservation.call_id == call.id))
        assert res is not None and (res.amount_pence, res.status, res.free) == (93, "open", False)
    sql.clear()
    refused = DecisionRecord(
        **{**allow(prisoner, "6.1").__dict__, "decision": Decision.refuse(Reason.NOT_APPROVED)}
    )
    assert await store.record(refused) is None
    assert sql.sent == ["INSERT"]  # a refusal: its decision row only


async def test_a_decision_reads_and_writes_in_one_unit(store: SqlCallStore) -> None:
    prisoner = await the_prisoner(store)
    sql = Statements(store)
    async with store.unit() as unit:
        assert not (await unit.prisoner_facts(prisoner.id, NOW, NOW)).call_in_progress
        assert await unit.record(allow(prisoner, "4.0")) is None  # free: no hold
        assert await unit.record(allow(prisoner, "4.1")) is Reason.CALL_IN_PROGRESS
        # after a refused write the unit goes on: the refusal is stored in it
        refused = Decision.refuse(Reason.CALL_IN_PROGRESS)
        record = DecisionRecord(**{**allow(prisoner, "4.1").__dict__, "decision": refused})
        assert await unit.record(record) is None
        assert (await unit.prisoner_facts(prisoner.id, NOW, NOW)).call_in_progress
    assert sql.checkouts == 1
    pg = store.engine.dialect.name == "postgresql"
    # PostgreSQL: the allowed call, the refused second one (the whole statement failed), the
    # refusal's decision; elsewhere the first's decision, call and reservation
    first = ["SELECT", "WITH", "WITH", "INSERT"] if pg else ["SELECT", "INSERT", "INSERT", "INSERT"]
    assert sql.sent[:4] == first
    async with store.sessions() as s:
        reasons = await s.scalars(select(m.CallDecision.reason).order_by(m.CallDecision.id))
        assert list(reasons) == ["approved_contact", "call_in_progress"]


async def test_concurrent_allows_open_exactly_one_call(store: SqlCallStore) -> None:
    prisoner = await the_prisoner(store)
    results = await asyncio.gather(*(store.record(allow(prisoner, f"1.{i}")) for i in range(8)))
    assert sorted(results, key=str) == [None] + [Reason.CALL_IN_PROGRESS] * 7
    assert (await facts(store, prisoner)).call_in_progress
    async with store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(m.Call)) == 1
        # Only the winner's decision is stored; the losers are refused by the caller.
        assert await s.scalar(select(func.count()).select_from(m.CallDecision)) == 1
    (open_id,) = await store.open_calls()
    assert await store.end_call(open_id, "16 Normal Clearing", NOW) is True
    assert await store.end_call(open_id, "16 Normal Clearing", NOW) is False  # only once
    assert not (await facts(store, prisoner)).call_in_progress
    assert await store.record(allow(prisoner, "2.0")) is None


async def test_an_allowed_call_reserves_its_credit_or_is_refused(store: SqlCallStore) -> None:
    prisoner = await the_prisoner(store)
    async with store.sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 50, "ref-1")
    assert await store.record(allow(prisoner, "3.0", reserve=60)) is Reason.INSUFFICIENT_CREDIT
    async with store.sessions() as s:  # nothing of the refused call was kept
        assert await s.scalar(select(func.count()).select_from(m.Call)) == 0
        assert await s.scalar(select(func.count()).select_from(m.CallDecision)) == 0
    assert await store.record(allow(prisoner, "3.1", reserve=40)) is None
    async with store.sessions() as s:
        assert await ledger.balance(s, prisoner.id) == (50, 40, 10)


async def test_the_last_credit_goes_to_one_of_two_at_once(store: SqlCallStore) -> None:
    """A decision reserving the prisoner's last pence races an adjustment taking them: exactly
    one of the two has them, whichever it is, and the account stays equal to its ledger."""
    prisoner = await the_prisoner(store)
    for round_no in range(8):
        async with store.sessions.begin() as s:
            await session_services(s).accounts.topup(TESTER, "A1234BC", 93, f"ref-r{round_no}")

        async def take(key: str = f"take-{round_no}") -> bool:
            try:
                async with store.sessions.begin() as s:
                    await session_services(s).accounts.adjust(
                        TESTER, "A1234BC", -93, "taken", key, "a test"
                    )
            except Refused:
                return False
            return True

        decided, taken = await asyncio.gather(
            store.record(allow(prisoner, f"8.{round_no}", reserve=93)), take()
        )
        assert (decided is None) != taken, (round_no, decided, taken)
        assert decided in (None, Reason.INSUFFICIENT_CREDIT)
        async with store.sessions.begin() as s:
            await ledger.verify_account(s, prisoner.id)
            # the call, if opened, ends and is released: the next round starts from nothing
            call_id = await s.scalar(select(m.Call.id).where(m.Call.uniqueid == f"8.{round_no}"))
            if call_id is not None:
                await ledger.release(s, call_id)
                await s.execute(m.Call.__table__.update().values(ended_at=NOW))
        async with store.sessions.begin() as s:
            balance = await ledger.balance(s, prisoner.id)
            assert balance.reserved == 0 and balance.balance in (0, 93)
            if balance.balance:
                await session_services(s).accounts.adjust(
                    TESTER, "A1234BC", -93, "reset", f"reset-{round_no}", "a test"
                )


async def test_the_allowance_counts_paid_calls_of_today_and_this_week(store: SqlCallStore) -> None:
    prisoner = await the_prisoner(store)
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
    ctx = (await facts(store, prisoner, day, week)).billing
    assert (ctx.usage.calls_today, ctx.usage.seconds_today) == (2, 120)
    assert ctx.usage.seconds_this_week == 420
    empty = (await facts(store, prisoner, NOW, NOW)).billing
    assert (empty.usage.calls_today, empty.usage.seconds_today, empty.usage.seconds_this_week) == (
        0,
        0,
        0,
    )
