"""The ledger on real databases (SQLite and PostgreSQL): to the penny, append-only, and safe
under concurrency."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.ledger import AccountMismatch, LedgerError
from callcontrol.adapters.db.tables import Account, LedgerEntry, Reservation
from callcontrol.domain.tariffs import DEFAULT_TARIFFS, Tariff
from callcontrol.operator_services import session_services
from callcontrol.services.accounts import AccountService
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol.services.errors import Conflict, Invalid, NotFound, Refused, ServiceError

Sessions = async_sessionmaker[AsyncSession]
_serial = itertools.count(1)
OFFICER, FINANCE = Actor("officer", OPERATOR), Actor("finance", OPERATOR)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_database")


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


async def add_prisoner(sessions: Sessions, number: str | None = None) -> int:
    """A prisoner in a cell of their own; returns the prisoner's id."""
    n = next(_serial)
    async with sessions.begin() as s:
        cell = m.Cell(name=f"C{n}", sip_username=f"C{n}", sip_md5_cred="0" * 32)
        s.add(cell)
        await s.flush()
        prisoner = m.Prisoner(
            prison_number=number or f"P{n}", name="Test", pin_hash="h1$00", cell_id=cell.id
        )
        s.add(prisoner)
        await s.flush()
        return prisoner.id


async def add_call(sessions: Sessions, prisoner_id: int, ended: bool = False) -> int:
    """A call of the prisoner (and its decision); returns the call's id."""
    n = next(_serial)
    async with sessions.begin() as s:
        cell_id = await s.scalar(select(m.Prisoner.cell_id).where(m.Prisoner.id == prisoner_id))
        assert cell_id is not None
        decision = m.CallDecision(
            handset="C", dialled="02079460000", outcome="allow", reason="approved_contact"
        )
        s.add(decision)
        await s.flush()
        call = m.Call(
            decision_id=decision.id,
            prisoner_id=prisoner_id,
            cell_id=cell_id,
            number="+442079460000",
            channel=f"PJSIP/C-{n}",
            uniqueid=f"u{n}",
            started_at=datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
            ended_at=datetime.now(UTC) if ended else None,
        )
        s.add(call)
        await s.flush()
        return call.id


async def number_of(sessions: Sessions, pid: int) -> str:
    async with sessions() as s:
        number = await s.scalar(select(m.Prisoner.prison_number).where(m.Prisoner.id == pid))
    assert number is not None
    return number


async def state(sessions: Sessions, pid: int) -> tuple[int, int, int]:
    async with sessions() as s:
        await ledger.verify_account(s, pid)
        return tuple(await ledger.balance(s, pid))  # type: ignore[return-value]


async def entries(sessions: Sessions) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def accounts(s: AsyncSession, **kw: int) -> AccountService:
    """The operator's money service in ``s`` (the caller commits)."""
    return session_services(s, **kw).accounts


async def topup(sessions: Sessions, number: str, pence: int, ref: str, **kw: int) -> None:
    async with sessions.begin() as s:
        await accounts(s, **kw).topup(OFFICER, number, pence, ref)


async def reserve(sessions: Sessions, pid: int, call_id: int, pence: int, free: bool = False):
    async with sessions.begin() as s:
        return await ledger.reserve(
            s, pid, call_id, pence, max_seconds=600, rate=310,
            destination_class="uk_landline", rounding="per_second", free=free,
        )  # fmt: skip


async def test_topup_and_idempotent_retry(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1234BC")
    assert await state(sessions, pid) == (0, 0, 0)  # never used: no account yet
    async with sessions.begin() as s:
        first = (await accounts(s).topup(OFFICER, "A1234BC", 1000, "R-1")).entry
    assert (first.kind, first.amount_pence, first.balance_after) == ("topup", 1000, 1000)
    assert first.idempotency_key == "topup:R-1" and first.created_by == "officer"
    async with sessions.begin() as s:
        again = (await accounts(s).topup(Actor("else", OPERATOR), "A1234BC", 1000, "R-1")).entry
    assert again.id == first.id
    assert await state(sessions, pid) == (1000, 0, 1000) and await entries(sessions) == 1
    for amount, number in ((999, "A1234BC"), (1000, "B9")):
        if number == "B9":
            await add_prisoner(sessions, "B9")
        with pytest.raises(Conflict, match="already used"):
            await topup(sessions, number, amount, "R-1")
    await topup(sessions, "A1234BC", 250, "R-2")
    assert await state(sessions, pid) == (1250, 0, 1250) and await entries(sessions) == 2


@pytest.mark.parametrize(
    ("number", "pence", "ref", "message"),
    [
        ("A1", 0, "R", "more than 0"),
        ("A1", -5, "R", "more than 0"),
        ("A1", True, "R", "whole number"),
        ("A1", 1.5, "R", "whole number"),
        ("A1", 5, "  ", "reference must not be empty"),
        ("NOBODY", 5, "R", "no prisoner"),
    ],
)
async def test_topup_refusals(
    sessions: Sessions, number: str, pence: int, ref: str, message: str
) -> None:
    await add_prisoner(sessions, "A1")
    with pytest.raises(ServiceError, match=message):
        await topup(sessions, number, pence, ref)
    assert await entries(sessions) == 0


async def test_cap_refused_without_change(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 4000, "R-1")
    with pytest.raises(Refused, match=r"over the limit of £50\.00"):
        await topup(sessions, "A1", 1001, "R-2", max_balance=5000)
    assert await state(sessions, pid) == (4000, 0, 4000) and await entries(sessions) == 1
    await topup(sessions, "A1", 1000, "R-2", max_balance=5000)  # exactly to the cap
    await topup(sessions, "A1", 1000, "R-2", max_balance=5000)  # a retry: not refused, not applied
    assert await state(sessions, pid) == (5000, 0, 5000) and await entries(sessions) == 2


async def test_adjustments_never_below_zero_or_reserved(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 500, "R-1")
    async with sessions.begin() as s:
        e = await accounts(s).adjust(FINANCE, "A1", -200, "goodwill reversed", "adj-1")
    assert (e.kind, e.amount_pence, e.balance_after) == ("adjustment", -200, 300)
    with pytest.raises(Refused, match="below zero"):
        async with sessions.begin() as s:
            await accounts(s).adjust(FINANCE, "A1", -301, "too much", "adj-2")
    with pytest.raises(Invalid, match="must not be 0"):
        async with sessions.begin() as s:
            await accounts(s).adjust(FINANCE, "A1", 0, "nothing", "adj-3")
    assert await reserve(sessions, pid, await add_call(sessions, pid), 250)
    with pytest.raises(Refused, match="held for a call in progress"):
        async with sessions.begin() as s:
            await accounts(s).adjust(FINANCE, "A1", -51, "too much", "adj-4")
    async with sessions.begin() as s:
        await accounts(s).adjust(FINANCE, "A1", -50, "just enough", "adj-5")
    assert await state(sessions, pid) == (250, 250, 0)


async def test_reserve_settle_release_arithmetic(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 1000, "R-1")
    c1, c2 = await add_call(sessions, pid, ended=True), await add_call(sessions, pid, ended=True)
    c3, c4 = await add_call(sessions, pid, ended=True), await add_call(sessions, pid)
    assert await reserve(sessions, pid, c1, 600)
    assert await state(sessions, pid) == (1000, 600, 400)
    assert not await reserve(sessions, pid, c2, 401)  # not enough: nothing changes
    assert await state(sessions, pid) == (1000, 600, 400)
    assert await reserve(sessions, pid, c2, 400)
    assert await reserve(sessions, pid, c3, 999, free=True)  # free: holds 0, always succeeds
    assert await state(sessions, pid) == (1000, 1000, 0)
    async with sessions.begin() as s:
        entry = await ledger.settle(s, c1, 155, talk_seconds=300, ended_by="caller")
    assert entry is not None and (entry.kind, entry.amount_pence, entry.balance_after) == (
        "charge", -155, 845,
    )  # fmt: skip
    assert entry.idempotency_key == f"call:{c1}:charge" and entry.call_id == c1
    assert await state(sessions, pid) == (845, 400, 445)
    async with sessions.begin() as s:
        await ledger.release(s, c2)
        await ledger.release(s, c2)  # idempotent
        assert await ledger.settle(s, c3, 500, talk_seconds=900) is None  # free: no charge
    assert await state(sessions, pid) == (845, 0, 845)
    async with sessions() as s:
        statuses = dict((await s.execute(select(Reservation.call_id, Reservation.status))).all())
        call = await s.get(m.Call, c1)
    assert statuses == {c1: "settled", c2: "released", c3: "settled"}
    assert call is not None and (call.charge_pence, call.talk_seconds, call.ended_by) == (
        155, 300, "caller",
    )  # fmt: skip
    async with sessions.begin() as s:
        with pytest.raises(LedgerError, match="no reservation"):
            await ledger.settle(s, c4, 10, talk_seconds=10)
        await ledger.release(s, c4)  # nothing to release: nothing happens
    with pytest.raises(LedgerError, match="already has a reservation"):
        await reserve(sessions, pid, c1, 10)
    with pytest.raises(LedgerError, match="not a call of prisoner"):
        await reserve(sessions, await add_prisoner(sessions), c4, 10)


async def test_settle_exactly_once_and_never_above_reservation(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 300, "R-1")
    call = await add_call(sessions, pid)
    assert await reserve(sessions, pid, call, 200)
    async with sessions.begin() as s:
        first = await ledger.settle(s, call, 250, talk_seconds=4000)  # asks for more: gets 200
    assert first is not None and first.amount_pence == -200
    async with sessions.begin() as s:
        second = await ledger.settle(s, call, 250, talk_seconds=4000)
        await ledger.release(s, call)  # already settled: nothing to release
    assert second is not None and second.id == first.id
    assert await state(sessions, pid) == (100, 0, 100) and await entries(sessions) == 2
    with pytest.raises(LedgerError, match="must not be negative"):
        async with sessions.begin() as s:
            await ledger.settle(s, call, -1, talk_seconds=1)


async def test_concurrent_settles_charge_once(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 300, "R-1")
    call = await add_call(sessions, pid)
    assert await reserve(sessions, pid, call, 200)

    async def settle() -> int | None:
        async with sessions.begin() as s:
            entry = await ledger.settle(s, call, 120, talk_seconds=60)
            return None if entry is None else entry.id

    ids = await asyncio.gather(*(settle() for _ in range(6)))
    assert len(set(ids)) == 1 and None not in ids
    assert await state(sessions, pid) == (180, 0, 180) and await entries(sessions) == 2


async def test_concurrent_topup_retries_apply_once(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await asyncio.gather(*(topup(sessions, "A1", 700, "R-same") for _ in range(6)))
    assert await state(sessions, pid) == (700, 0, 700) and await entries(sessions) == 1


async def test_ledger_is_append_only(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 500, "R-1")
    statements = [
        "UPDATE ledger_entries SET amount_pence = 5000",
        "UPDATE ledger_entries SET reference = 'changed'",
        "DELETE FROM ledger_entries",
    ]
    async with sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            statements.append("TRUNCATE ledger_entries")
    for sql in statements:
        async with sessions() as s:
            with pytest.raises(DBAPIError, match="append-only"):
                await s.execute(text(sql))
            await s.rollback()
    async with sessions() as s:
        (entry,) = (await s.scalars(select(LedgerEntry))).all()
    assert (entry.amount_pence, entry.reference) == (500, "R-1")
    assert await state(sessions, pid) == (500, 0, 500)


async def test_database_refuses_bad_accounts(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 500, "R-1")
    for sql in (
        "UPDATE accounts SET balance_pence = -1, reserved_pence = 0",
        "UPDATE accounts SET reserved_pence = 501",
        "UPDATE accounts SET reserved_pence = -1",
    ):
        async with sessions() as s:
            with pytest.raises(DBAPIError):
                await s.execute(text(sql))
            await s.rollback()
    assert await state(sessions, pid) == (500, 0, 500)


async def test_verify_account_finds_disagreement(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 500, "R-1")
    call = await add_call(sessions, pid)
    assert await reserve(sessions, pid, call, 100)
    await state(sessions, pid)  # agrees
    for values, message in (
        ({"balance_pence": 499}, "the ledger sums to 500p"),
        ({"reserved_pence": 0}, "open reservations hold 100p"),
    ):
        async with sessions() as s:
            await s.execute(Account.__table__.update().values(**values))
            with pytest.raises(AccountMismatch, match=message):
                await ledger.verify_account(s, pid)
            await s.rollback()


async def test_statement(sessions: Sessions) -> None:
    pid = await add_prisoner(sessions, "A1")
    await topup(sessions, "A1", 500, "R-1")
    call = await add_call(sessions, pid)
    assert await reserve(sessions, pid, call, 200)
    async with sessions.begin() as s:
        await ledger.settle(s, call, 31, talk_seconds=60)
    async with sessions() as s:
        lines = await accounts(s).statement("A1")
        with pytest.raises(NotFound, match="no prisoner"):
            await accounts(s).statement("NOBODY")
    assert [
        (x.entry.kind, x.entry.amount_pence, x.entry.balance_after) for x in lines if x.entry
    ] == [
        ("topup", 500, 500),
        ("charge", -31, 469),
    ]
    assert lines[0].number is None
    assert (lines[1].number, lines[1].talk_seconds, lines[1].charge_pence) == (
        "+442079460000", 60, 31,
    )  # fmt: skip
    assert lines[1].started_at == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def test_tariffs(sessions: Sessions) -> None:
    async with sessions() as s:
        assert sorted(await ledger.list_tariffs(s), key=str) == sorted(DEFAULT_TARIFFS, key=str)
    async with sessions.begin() as s:
        assert await accounts(s).set_tariff(FINANCE, "uk_mobile", 500, 250) == Tariff(
            "uk_mobile", 500, 250
        )
    async with sessions.begin() as s:
        for args, message in (
            (("uk_mobil", 500, None), "no destination class 'uk_mobil'"),
            (("uk_mobile", -1, None), "must not be negative"),
            (("uk_mobile", 1, -1), "must not be negative"),
        ):
            with pytest.raises(ServiceError, match=message):
                await accounts(s).set_tariff(FINANCE, *args)  # type: ignore[arg-type]
    async with sessions() as s:
        by_class = {t.destination_class: t for t in await ledger.list_tariffs(s)}
    assert by_class["uk_mobile"] == Tariff("uk_mobile", 500, 250)
    assert by_class["uk_landline"] == Tariff("uk_landline", 310)


# --- the property: concurrent reservations never over-reserve (PostgreSQL) ----------------------


async def _concurrent_reservations(url: str, balance: int, amounts: list[int]) -> None:
    engine = make_engine(url, pool_size=8, max_overflow=0)
    sessions = session_factory(engine)
    try:
        pid = await add_prisoner(sessions)
        if balance:
            await topup(sessions, await number_of(sessions, pid), balance, f"R{pid}")
        calls = [await add_call(sessions, pid, ended=True) for _ in amounts]
        results = await asyncio.gather(
            *(reserve(sessions, pid, c, a) for c, a in zip(calls, amounts, strict=True))
        )
        won = [a for a, ok in zip(amounts, results, strict=True) if ok]
        lost = [a for a, ok in zip(amounts, results, strict=True) if not ok]
        assert sum(won) <= balance
        async with sessions() as s:
            held = await s.execute(
                select(Reservation.call_id, Reservation.amount_pence, Reservation.status).where(
                    Reservation.prisoner_id == pid
                )
            )
            rows = {c: (amount, status) for c, amount, status in held}
        # Every success holds exactly its amount, every failure left no trace.
        assert rows == {
            c: (a, "open") for c, a, ok in zip(calls, amounts, results, strict=True) if ok
        }
        assert await state(sessions, pid) == (balance, sum(won), balance - sum(won))
        # Greedy: whatever failed would not fit in what was left at the end either.
        assert all(a > balance - sum(won) for a in lost)
    finally:
        await engine.dispose()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example: a new prisoner
)
@given(
    balance=st.integers(0, 5000),
    amounts=st.lists(st.integers(0, 1500), min_size=10, max_size=40),
)
def test_concurrent_reservations_never_over_reserve(
    pg_database: str, balance: int, amounts: list[int]
) -> None:
    asyncio.run(_concurrent_reservations(pg_database, balance, amounts))
