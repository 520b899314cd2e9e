"""The operator's services over the SQL store (adapters/db/operator_store.py), on SQLite and
PostgreSQL: the views read back, the queue, the history and the audit log written in the
same transaction as the change (both or neither), the money locked and posted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.operator_store import SessionStore, SqlOperatorStore
from callcontrol.domain.pins import pin_matches
from callcontrol.services.accounts import AccountService
from callcontrol.services.actors import Actor
from callcontrol.services.cells import CellService
from callcontrol.services.contacts import ContactService
from callcontrol.services.errors import Conflict, Invalid, NotFound, Refused, SharedPin
from callcontrol.services.numbers import NumberService
from callcontrol.services.prisoners import PrisonerService

SECRET = b"operator-store-secret-0123456789"
ADMIN = Actor("ada", "admin")
OFFICER = Actor("olly", "officer")
LONDON, LEEDS = "+442079460000", "+441134960000"
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


class Site:
    def __init__(self, sessions: Sessions) -> None:
        store = SqlOperatorStore(sessions)
        self.sessions = sessions
        self.cells = CellService(store)
        self.prisoners = PrisonerService(
            store, pin_keys=lambda: SECRET, site_max_call_s=1800, max_social_contacts=2
        )
        self.contacts = ContactService(store, region="GB", max_social=2, max_legal=1)
        self.numbers = NumberService(store, region="GB")
        self.accounts = AccountService(store, max_balance=5000)

    async def count(self, table: type[m.Base]) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(table)) or 0)

    async def audit(self) -> list[tuple[str, str, str, str]]:
        async with self.sessions() as s:
            rows = await s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.id))
            return [(e.actor, e.action, e.target, e.reason) for e in rows]


async def test_cells_and_prisoners_read_back(sessions: Sessions) -> None:
    site = Site(sessions)
    cell, password = await site.cells.add(ADMIN, "A1-01", wing="A")
    assert (cell.name, cell.wing, cell.sip_username, cell.enabled) == ("A1-01", "A", "A1-01", True)
    await site.cells.add(ADMIN, "A1-02")
    with pytest.raises(Conflict):
        await site.cells.add(ADMIN, "A1-01")
    await site.prisoners.add(ADMIN, "P2", "Bo", "2468", "A1-01")
    await site.prisoners.add(ADMIN, "P1", "Ann", "1357", "A1-01")
    with pytest.raises(SharedPin):
        await site.prisoners.add(ADMIN, "P3", "Cy", "1357", "A1-01")
    with pytest.raises(SharedPin):
        await site.prisoners.set_pin(ADMIN, "P2", "1357")
    async with sessions() as s:
        row = await s.scalar(select(m.Prisoner).where(m.Prisoner.prison_number == "P2"))
        assert row is not None and pin_matches(SECRET, "P2", "2468", row.pin_hash)
        cred = await s.scalar(select(m.Cell.sip_md5_cred).where(m.Cell.name == "A1-01"))
        assert cred is not None and password not in cred
    listed = await site.cells.list()
    assert [(c.name, c.prisoners) for c in listed] == [("A1-01", ("P1", "P2")), ("A1-02", ())]
    await site.cells.disable(OFFICER, "A1-02", "smashed")
    got = await site.cells.get("A1-02")
    assert (got.enabled, got.disabled_reason, got.locked_until) == (False, "smashed", None)
    moved = await site.prisoners.move(ADMIN, "P2", "A1-02")
    assert moved.cell == "A1-02"
    await site.prisoners.suspend(OFFICER, "P1", "adjudication")
    await site.prisoners.set_limit(ADMIN, "P1", 10)
    detail = await site.prisoners.get("P1")
    assert (detail.prisoner.active, detail.prisoner.suspended_reason) == (False, "adjudication")
    assert (detail.prisoner.max_call_s, detail.money.balance, detail.limits.site_max_call_s) == (
        600, 0, 1800
    )  # fmt: skip
    assert [p.prison_number for p in await site.prisoners.list()] == ["P1", "P2"]
    with pytest.raises(NotFound):
        await site.prisoners.get("NOBODY")
    assert (await site.audit())[-4:] == [
        ("olly", "disable", "cell:A1-02", "smashed"),
        ("ada", "move", "prisoner:P2", ""),
        ("olly", "suspend", "prisoner:P1", "adjudication"),
        ("ada", "limit", "prisoner:P1", ""),
    ]


async def test_a_refused_change_leaves_no_row_and_no_audit(sessions: Sessions) -> None:
    site = Site(sessions)
    await site.cells.add(ADMIN, "A1-01")
    before = (await site.count(m.Cell), await site.count(m.AuditEntry))
    with pytest.raises(Refused):
        await site.cells.enable(OFFICER, "A1-01")
    with pytest.raises(Invalid):
        await site.cells.disable(OFFICER, "A1-01", "x" * 2001)
    # An audit entry that cannot be written takes the change down with it.
    with pytest.raises(Invalid, match="audit actor"):
        await site.cells.disable(Actor("x" * 101, "officer"), "A1-01", "too long a name")
    assert (await site.cells.get("A1-01")).enabled
    assert (await site.count(m.Cell), await site.count(m.AuditEntry)) == before


async def test_contact_queue_history_and_limits(sessions: Sessions) -> None:
    site = Site(sessions)
    await site.cells.add(ADMIN, "A1-01")
    await site.prisoners.add(ADMIN, "P1", "Ann", "1357", "A1-01")
    await site.prisoners.add(ADMIN, "P2", "Bo", "2468", "A1-01")
    await site.contacts.add(OFFICER, "P1", "020 7946 0000", "social", "Mum")
    await site.contacts.request("P2", "0113 496 0000", "social", "Dad", "kiosk")
    await site.contacts.request("P1", "0113 496 0000", "social", "Dad", "kiosk")
    with pytest.raises(Conflict, match="limit of 2 social"):
        await site.contacts.request("P1", "0121 496 0001", "social", "", "kiosk")
    queue = await site.contacts.pending()
    assert [
        (q.prison_number, q.prisoner_name, q.cell, q.number, q.requested_by) for q in queue
    ] == [
        ("P1", "Ann", "A1-01", LONDON, "olly"),
        ("P2", "Bo", "A1-01", LEEDS, "P2 via kiosk"),
        ("P1", "Ann", "A1-01", LEEDS, "P1 via kiosk"),
    ]
    assert all(q.requested_at is not None for q in queue)
    await site.contacts.approve(OFFICER, "P1", LONDON, "known family")
    await site.contacts.block(OFFICER, "P2", LEEDS, "victim")
    assert [(q.prison_number, q.number) for q in await site.contacts.pending()] == [("P1", LEEDS)]
    history = await site.contacts.history("P1")
    assert [(h.number, h.action, h.new_status, h.changed_by, h.note) for h in history] == [
        (LONDON, "added", "pending", "olly", "social contact"),
        (LEEDS, "requested", "pending", "P1 via kiosk", "social contact"),
        (LONDON, "approved", "approved", "olly", "known family"),
    ]
    assert [(c.number, c.status, c.label) for c in await site.contacts.of("P1")] == [
        (LEEDS, "pending", "Dad"),
        (LONDON, "approved", "Mum"),
    ]
    audit = await site.audit()
    assert ("olly", "contact_approve", f"contact:P1:{LONDON}", "known family") in audit
    assert ("olly", "contact_block", f"contact:P2:{LEEDS}", "victim") in audit
    await site.numbers.allow(ADMIN, "116123", privileged=True, label="Samaritans")
    await site.numbers.block(ADMIN, LEEDS)
    assert [(g.number, g.policy, g.privileged) for g in await site.numbers.list()] == [
        ("116123", "allowed", True), (LEEDS, "blocked", False),
    ]  # fmt: skip


async def test_money_through_the_ledger(sessions: Sessions) -> None:
    site = Site(sessions)
    await site.cells.add(ADMIN, "A1-01")
    await site.prisoners.add(ADMIN, "P1", "Ann", "1357", "A1-01")
    first = await site.accounts.topup(ADMIN, "P1", 1000, "R-1")
    again = await site.accounts.topup(ADMIN, "P1", 1000, "R-1")
    assert again.already_applied and again.entry.id == first.entry.id
    with pytest.raises(Refused, match="over the limit"):
        await site.accounts.topup(ADMIN, "P1", 4001, "R-2")
    await site.accounts.adjust(ADMIN, "P1", -200, "goodwill reversed", "adj-1")
    money = await site.accounts.balance("P1")
    assert (money.balance, money.reserved, money.available) == (800, 0, 800)
    lines = await site.accounts.statement("P1")
    assert [(x.entry.kind, x.balance_after) for x in lines if x.entry] == [
        ("topup", 1000), ("adjustment", 800),
    ]  # fmt: skip
    async with sessions() as s:
        pid = await ledger.find_prisoner(s, "P1")
        await ledger.verify_account(s, pid)
    tariff = await site.accounts.set_tariff(ADMIN, "uk_mobile", 500, 250)
    assert tariff in await site.accounts.tariffs()
    with pytest.raises(NotFound):
        await site.accounts.set_tariff(ADMIN, "mars", 1, None)


async def test_concurrent_topups_never_pass_the_cap(sessions: Sessions) -> None:
    site = Site(sessions)
    await site.cells.add(ADMIN, "A1-01")
    await site.prisoners.add(ADMIN, "P1", "Ann", "1357", "A1-01")
    results = await asyncio.gather(
        *(site.accounts.topup(ADMIN, "P1", 1000, f"R-{i}") for i in range(8)),
        return_exceptions=True,
    )
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 5 and all(isinstance(r, Refused) for r in results if r not in done)
    assert (await site.accounts.balance("P1")).balance == 5000


async def test_concurrent_requests_never_pass_the_contact_limit(sessions: Sessions) -> None:
    """A prisoner firing requests at once from the kiosk: each sees the others' (the list is
    locked), so exactly the limit (2 social) get in."""
    site = Site(sessions)
    await site.cells.add(ADMIN, "A1-01")
    await site.prisoners.add(ADMIN, "P1", "Ann", "1357", "A1-01")
    numbers = [LONDON, LEEDS, "+441214960001", "+441614960002", "+441314960003"]
    results = await asyncio.gather(
        *(site.contacts.request("P1", n, "social", "", "kiosk") for n in numbers),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 3 and all(isinstance(r, Conflict) for r in refused), refused
    assert len(await site.contacts.of("P1")) == 2


async def test_session_store_in_the_callers_transaction(sessions: Sessions) -> None:
    async with sessions() as s:
        store = SessionStore(s)
        await CellService(store).add(ADMIN, "A1-01")
        await PrisonerService(store, pin_keys=lambda: SECRET).add(ADMIN, "P1", "A", "1357", "A1-01")
        await s.rollback()  # nothing was committed by the services
    assert await Site(sessions).count(m.Cell) == 0


def test_views_are_frozen() -> None:
    from callcontrol.services.views import CellView

    view = CellView("A1", "", "A1", True, "", (), datetime.now(UTC) + timedelta(minutes=1))
    with pytest.raises(AttributeError):
        view.enabled = False  # type: ignore[misc]
    assert view.locked(datetime.now(UTC))
