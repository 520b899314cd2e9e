"""ContactService, NumberService and AccountService's rules over the in-memory store: the
contact limits (for staff and for a prisoner's own request alike), the queue, reasons kept
in the history and the audit log, the balance cap, idempotent top-ups, tariffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcontrol.domain.tariffs import Tariff
from callcontrol.services.accounts import AccountService, merge_statement
from callcontrol.services.actors import Actor
from callcontrol.services.cells import CellService
from callcontrol.services.contacts import ContactService
from callcontrol.services.errors import Conflict, Invalid, NotFound, Refused
from callcontrol.services.numbers import NumberService
from callcontrol.services.prisoners import PrisonerService
from callcontrol.services.views import Entry, StatementLine
from tests.services.operator_fake import T0, FakeOperatorStore

ADMIN = Actor("ada", "admin")
OFFICER = Actor("olly", "officer")
AUDITOR = Actor("aud", "auditor")
LONDON, LEEDS, MOBILE = "+442079460000", "+441134960000", "+447911123400"


@pytest.fixture
async def store() -> FakeOperatorStore:
    store = FakeOperatorStore()
    await CellService(store).add(ADMIN, "A1")
    prisoners = PrisonerService(store, pin_keys=lambda: b"k" * 32)
    await prisoners.add(ADMIN, "P1", "Ann", "1234", "A1")
    await prisoners.add(ADMIN, "P2", "Bo", "2345", "A1")
    return store


def contacts(store: FakeOperatorStore, social: int = 2, legal: int = 1) -> ContactService:
    clock = iter(T0 + timedelta(minutes=i) for i in range(1000))
    return ContactService(
        store, region="GB", max_social=social, max_legal=legal, clock=lambda: next(clock)
    )


async def test_queue_request_approve_block_with_reasons(store: FakeOperatorStore) -> None:
    service = contacts(store)
    await service.add(OFFICER, "P1", "020 7946 0000", "social", "Mum")
    asked = await service.request("P2", "07911 123400", "social", "Dad", "kiosk")
    assert (asked.number, asked.status) == (MOBILE, "pending")
    queue = await service.pending()
    seen = [(q.prison_number, q.prisoner_name, q.cell, q.number, q.requested_by) for q in queue]
    assert seen == [
        ("P1", "Ann", "A1", LONDON, "olly"),
        ("P2", "Bo", "A1", MOBILE, "P2 via kiosk"),
    ]
    assert queue[0].requested_at == T0
    approved = await service.approve(OFFICER, "P1", "+44 20 7946 0000", "known family")
    assert approved.status == "approved"
    await service.block(OFFICER, "P2", MOBILE, "victim's number")
    assert await service.pending() == []
    history = await service.history("P2")
    assert [(h.action, h.old_status, h.new_status, h.changed_by, h.note) for h in history] == [
        ("requested", "", "pending", "P2 via kiosk", "social contact"),
        ("blocked", "pending", "blocked", "olly", "victim's number"),
    ]
    audit = [(n.actor, n.action, n.target, n.reason) for n in store.state.audit[3:]]
    assert audit == [
        ("olly", "contact_add", f"contact:P1:{LONDON}", ""),
        ("P2 via kiosk", "contact_request", f"contact:P2:{MOBILE}", ""),
        ("olly", "contact_approve", f"contact:P1:{LONDON}", "known family"),
        ("olly", "contact_block", f"contact:P2:{MOBILE}", "victim's number"),
    ]
    with pytest.raises(Conflict, match="already approved"):
        await service.approve(OFFICER, "P1", LONDON)
    with pytest.raises(Conflict, match="already blocked"):
        await service.block(OFFICER, "P2", MOBILE)
    with pytest.raises(NotFound, match="add it first"):
        await service.approve(OFFICER, "P1", LEEDS)
    with pytest.raises(Refused):
        await service.approve(AUDITOR, "P2", MOBILE)
    assert [c.status for c in await service.of("P2")] == ["blocked"]


async def test_a_prisoners_request_meets_the_same_limits(store: FakeOperatorStore) -> None:
    service = contacts(store, social=2, legal=1)
    await service.request("P1", LONDON, "social", "", "kiosk")
    await service.add(OFFICER, "P1", LEEDS, "social")
    with pytest.raises(Conflict, match="limit of 2 social contacts"):
        await service.request("P1", MOBILE, "social", "", "kiosk")
    with pytest.raises(Conflict, match="already listed for P1 \\(pending\\)"):
        await service.request("P1", "020 7946 0000", "social", "", "kiosk")
    await service.request("P1", MOBILE, "legal", "Solicitor", "kiosk")
    with pytest.raises(Conflict, match="limit of 1 legal"):
        await service.request("P1", "+441214960001", "legal", "", "kiosk")
    # A blocked contact does not count; approving it again does.
    await service.block(OFFICER, "P1", LEEDS, "harassment")
    await service.request("P1", "+441614960002", "social", "", "kiosk")
    with pytest.raises(Conflict, match="limit of 2 social"):
        await service.approve(OFFICER, "P1", LEEDS, "appeal")
    statuses = {c.number: c.status for c in await service.of("P1")}
    assert statuses[LEEDS] == "blocked"
    # Asking again for a blocked number never unblocks it, nor queues it again.
    with pytest.raises(Conflict, match="already listed for P1 \\(blocked\\)"):
        await service.request("P1", "0113 496 0000", "legal", "my lawyer", "kiosk")
    assert {c.number: c.status for c in await service.of("P1")}[LEEDS] == "blocked"


@pytest.mark.parametrize(
    ("number", "kind", "label", "problem"),
    [
        ("999", "social", "", Invalid),  # emergency: never listed
        ("116123", "social", "", Conflict),  # a short code: for everyone, not one prisoner
        ("not a number", "social", "", Invalid),
        (LONDON, "friend", "", Invalid),
        (LONDON, "social", "x" * 201, Invalid),
        (LONDON, "social", "bell\x07", Invalid),
    ],
)
async def test_request_checks(
    store: FakeOperatorStore, number: str, kind: str, label: str, problem: type[Exception]
) -> None:
    with pytest.raises(problem):
        await contacts(store).request("P1", number, kind, label, "kiosk")
    assert store.state.contacts == {} and store.state.history == []


async def test_request_for_nobody(store: FakeOperatorStore) -> None:
    with pytest.raises(NotFound):
        await contacts(store).request("NOBODY", LONDON, "social", "", "kiosk")
    with pytest.raises(Invalid):
        await contacts(store).request("P1/../P2", LONDON, "social", "", "kiosk")


async def test_block_unlisted_and_limit(store: FakeOperatorStore) -> None:
    service = contacts(store)
    blocked = await service.block(OFFICER, "P1", LEEDS, "threats", kind="social", label="Ex")
    assert (blocked.status, blocked.label) == ("blocked", "Ex")
    assert (await service.history("P1"))[0].note == "not listed; threats"
    with pytest.raises(Refused):
        await service.set_limit(OFFICER, "P1", LEEDS, 5)
    assert (await service.set_limit(ADMIN, "P1", LEEDS, 5)).max_call_s == 300


async def test_global_numbers(store: FakeOperatorStore) -> None:
    numbers = NumberService(store, region="GB")
    allowed = await numbers.allow(ADMIN, "116 123", privileged=True, label="Samaritans")
    assert (allowed.number, allowed.policy, allowed.privileged) == ("116123", "allowed", True)
    await numbers.block(ADMIN, "020 7946 0000")
    assert [(g.number, g.policy) for g in await numbers.list()] == [
        ("116123", "allowed"), (LONDON, "blocked"),
    ]  # fmt: skip
    with pytest.raises(Refused):
        await numbers.allow(OFFICER, LEEDS)
    with pytest.raises(Invalid):
        await numbers.allow(ADMIN, "112")


async def test_topup_cap_and_idempotency(store: FakeOperatorStore) -> None:
    accounts = AccountService(store, max_balance=5000)
    first = await accounts.topup(ADMIN, "P1", 1000, "R-1")
    assert (first.money.balance, first.already_applied) == (1000, False)
    again = await accounts.topup(ADMIN, "P1", 1000, " R-1 ")
    assert again.already_applied and again.entry == first.entry and again.money.balance == 1000
    with pytest.raises(Conflict, match="already used by entry 1"):
        await accounts.topup(ADMIN, "P1", 999, "R-1")
    with pytest.raises(Conflict, match="for another prisoner"):
        await accounts.topup(ADMIN, "P2", 1000, "R-1")
    with pytest.raises(Refused, match="over the limit of £50.00"):
        await accounts.topup(ADMIN, "P1", 4001, "R-2")
    await accounts.topup(ADMIN, "P1", 4000, "R-2")
    assert (await accounts.balance("P1")).balance == 5000
    for bad in (0, -5, 1.5, True, "100"):
        with pytest.raises(Invalid):
            await accounts.topup(ADMIN, "P1", bad, "R-3")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="reference must not be empty"):
        await accounts.topup(ADMIN, "P1", 5, "  ")
    with pytest.raises(Refused):
        await accounts.topup(OFFICER, "P1", 5, "R-4")
    with pytest.raises(NotFound):
        await accounts.topup(ADMIN, "NOBODY", 5, "R-5")
    topups = [n for n in store.state.audit if n.action == "topup"]
    assert [n.detail for n in topups] == [
        "1000p (£10.00), reference R-1", "4000p (£40.00), reference R-2",
    ]  # fmt: skip


async def test_adjust_never_below_what_calls_hold(store: FakeOperatorStore) -> None:
    accounts = AccountService(store, max_balance=5000)
    await accounts.topup(ADMIN, "P1", 300, "R-1")
    store.state.money["P1"] = (300, 50)  # a call in progress holds 50p
    with pytest.raises(Refused, match="below zero"):
        await accounts.adjust(ADMIN, "P1", -301, "too much", "adj-1")
    with pytest.raises(Refused, match="held for a call in progress"):
        await accounts.adjust(ADMIN, "P1", -251, "too much", "adj-1")
    with pytest.raises(Invalid, match="must not be 0"):
        await accounts.adjust(ADMIN, "P1", 0, "nothing", "adj-1")
    entry = await accounts.adjust(ADMIN, "P1", -250, "goodwill reversed", "adj-1", "error")
    assert (entry.kind, entry.balance_after) == ("adjustment", 50)
    money = await accounts.balance("P1")
    assert (money.balance, money.reserved, money.available) == (50, 50, 0)
    assert store.state.audit[-1].reason == "error"


async def test_tariffs(store: FakeOperatorStore) -> None:
    store.state.tariffs["uk_mobile"] = Tariff("uk_mobile", 700)
    accounts = AccountService(store)
    assert await accounts.set_tariff(ADMIN, "uk_mobile", 500, 250) == Tariff("uk_mobile", 500, 250)
    with pytest.raises(NotFound, match="known: uk_mobile"):
        await accounts.set_tariff(ADMIN, "mars", 1, None)
    with pytest.raises(Invalid):
        await accounts.set_tariff(ADMIN, "uk_mobile", -1, None)
    with pytest.raises(Refused):
        await accounts.set_tariff(OFFICER, "uk_mobile", 1, None)
    assert await accounts.tariffs() == [Tariff("uk_mobile", 500, 250)]


def test_statement_merges_free_calls_in_time() -> None:
    def entry(i: int, after: int, at: datetime) -> StatementLine:
        e = Entry(i, "P1", "topup", after, after, f"k{i}", "r", None, at, "ada")
        return StatementLine(e, None, None, None, None, None, at, after)

    t = datetime(2026, 1, 1, tzinfo=UTC)
    free = StatementLine(None, LONDON, t, 30, 0, 7, t + timedelta(minutes=1))
    lines = merge_statement([entry(1, 100, t), entry(2, 300, t + timedelta(minutes=2))], [free])
    assert [(x.entry.id if x.entry else None, x.balance_after) for x in lines] == [
        (1, 100), (None, 100), (2, 300),
    ]  # fmt: skip
