"""CellService and PrisonerService's rules over the in-memory store: names, SIP passwords,
PINs (format, never a cellmate's), who may do what, and every change audited or nothing."""

from __future__ import annotations

import hashlib

import pytest

from callcontrol.domain.pins import pin_matches
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol.services.cells import CellService
from callcontrol.services.errors import Conflict, Invalid, NotFound, Refused, SharedPin
from callcontrol.services.prisoners import PrisonerService
from tests.services.operator_fake import FakeOperatorStore

SECRET = b"service-test-secret-0123456789"
ADMIN = Actor("ada", "admin")
OFFICER = Actor("olly", "officer")
AUDITOR = Actor("aud", "auditor")
SHELL = Actor("root", OPERATOR)


@pytest.fixture
def store() -> FakeOperatorStore:
    return FakeOperatorStore()


def services(store: FakeOperatorStore, digits: int = 4) -> tuple[CellService, PrisonerService]:
    return CellService(store), PrisonerService(
        store, pin_keys=lambda: SECRET, pin_digits=digits, site_max_call_s=1800
    )


async def test_add_cell_keeps_only_the_digest_and_audits(store: FakeOperatorStore) -> None:
    cells, _ = services(store)
    cell, password = await cells.add(ADMIN, "A1-01", wing="A")
    assert len(password) == 24 and password.isalnum()
    realm, cred = store.state.creds["A1-01"]
    assert cred == hashlib.md5(f"A1-01:{realm}:{password}".encode()).hexdigest()
    assert (cell.name, cell.wing, cell.enabled) == ("A1-01", "A", True)
    assert [(n.actor, n.action, n.target) for n in store.state.audit] == [
        ("ada", "cell_add", "cell:A1-01")
    ]
    _, other = await cells.add(ADMIN, "A1-02")
    assert other != password
    with pytest.raises(Conflict, match="already exists"):
        await cells.add(ADMIN, "A1-01")
    _, given = await cells.add(ADMIN, "A1-03", "Aa1!\"$%&'()*+,-./:<=>?@[]^_`{|}~")
    assert given == "Aa1!\"$%&'()*+,-./:<=>?@[]^_`{|}~"


@pytest.mark.parametrize(
    "name", ["", "-A1", "_A", "A" * 33, "A 1", "A1;drop", "A1\n", "Ä1", "A1/../x"]
)
async def test_bad_cell_names_refused_and_nothing_kept(store: FakeOperatorStore, name: str) -> None:
    cells, _ = services(store)
    with pytest.raises(Invalid, match="invalid cell name"):
        await cells.add(ADMIN, name)
    assert store.state.cells == {} and store.state.audit == []


@pytest.mark.parametrize(
    "password",
    ["", "a" * 11, "a" * 129, "has space in it", "semi;colon-pass", "hash#password",
     "tab\tin-password", "ünïcode-pässwörd"],
)  # fmt: skip
async def test_bad_sip_passwords(store: FakeOperatorStore, password: str) -> None:
    cells, _ = services(store)
    with pytest.raises(Invalid, match="SIP password"):
        await cells.add(ADMIN, "A1-09", password)
    await cells.add(ADMIN, "A1-09")
    before = store.state.creds["A1-09"]
    with pytest.raises(Invalid, match="SIP password"):
        await cells.set_sip_password(ADMIN, "A1-09", password)
    assert store.state.creds["A1-09"] == before


async def test_rights_on_cells(store: FakeOperatorStore) -> None:
    cells, _ = services(store)
    await cells.add(SHELL, "A1-01")  # the command line holds the database: every right
    for who in (OFFICER, AUDITOR):
        with pytest.raises(Refused, match="only an admin may add cell"):
            await cells.add(who, "A1-02")
        with pytest.raises(Refused):
            await cells.set_sip_password(who, "A1-01")
    with pytest.raises(Refused, match="may not disable"):
        await cells.disable(AUDITOR, "A1-01", "no")
    disabled = await cells.disable(OFFICER, "A1-01", "  handset\tsmashed ")
    assert (disabled.enabled, disabled.disabled_reason) == (False, "handset smashed")
    with pytest.raises(Refused, match="only an admin may enable cell A1-01"):
        await cells.enable(OFFICER, "A1-01")
    assert (await cells.get("A1-01")).enabled is False
    enabled = await cells.enable(ADMIN, "A1-01", "repaired")
    assert (enabled.enabled, enabled.disabled_reason) == (True, "")
    actions = [(n.actor, n.role, n.action, n.reason) for n in store.state.audit]
    assert actions == [
        ("root", "operator", "cell_add", ""),
        ("olly", "officer", "disable", "handset smashed"),
        ("ada", "admin", "enable", "repaired"),
    ]


async def test_unknown_cell_and_bad_reason(store: FakeOperatorStore) -> None:
    cells, _ = services(store)
    with pytest.raises(NotFound, match="no cell named 'Z9'"):
        await cells.disable(OFFICER, "Z9", "x")
    with pytest.raises(NotFound):
        await cells.get("Z9")
    await cells.add(ADMIN, "A1-01")
    for bad in ("x" * 2001, "line\x00break", 12):
        with pytest.raises(Invalid, match="reason"):
            await cells.disable(OFFICER, "A1-01", bad)
    assert (await cells.get("A1-01")).enabled and len(store.state.audit) == 1


async def test_cells_list_shows_prisoners(store: FakeOperatorStore) -> None:
    cells, prisoners = services(store)
    await cells.add(ADMIN, "B1")
    await cells.add(ADMIN, "A1")
    await prisoners.add(ADMIN, "P2", "Bo", "2222", "A1")
    await prisoners.add(ADMIN, "P1", "Ann", "1111", "A1")
    listed = await cells.list()
    assert [(c.name, c.prisoners) for c in listed] == [("A1", ("P1", "P2")), ("B1", ())]


async def test_pins_are_hashed_and_never_shared_by_cellmates(store: FakeOperatorStore) -> None:
    cells, prisoners = services(store)
    await cells.add(ADMIN, "A1")
    await cells.add(ADMIN, "B1")
    await prisoners.add(ADMIN, "P1", "Ann", "1234", "A1")
    stored = store.tx.pin_hash("P1")
    assert "1234" not in stored and pin_matches(SECRET, "P1", "1234", stored)
    with pytest.raises(SharedPin, match="already has this PIN"):
        await prisoners.add(ADMIN, "P2", "Bo", "1234", "A1")
    assert "P2" not in store.state.prisoners
    await prisoners.add(ADMIN, "P2", "Bo", "1234", "B1")  # not a cellmate: allowed
    await prisoners.add(ADMIN, "P3", "Cy", "5555", "A1")
    with pytest.raises(SharedPin):
        await prisoners.set_pin(ADMIN, "P3", "1234")
    assert pin_matches(SECRET, "P3", "5555", store.tx.pin_hash("P3"))
    await prisoners.set_pin(ADMIN, "P1", "1234")  # their own PIN again: not a cellmate's
    with pytest.raises(SharedPin):
        await prisoners.set_own_pin("P3", "1234", "kiosk")
    await prisoners.set_own_pin("P3", "9876", "kiosk")
    assert pin_matches(SECRET, "P3", "9876", store.tx.pin_hash("P3"))
    last = store.state.audit[-1]
    assert (last.actor, last.role, last.action, last.target) == (
        "P3", "prisoner", "set_pin", "prisoner:P3"
    )  # fmt: skip
    assert all("9876" not in f"{n}" and "1234" not in f"{n}" for n in store.state.audit)


@pytest.mark.parametrize("pin", ["", "123", "12345", "12a4", "１２３４", " 1234", None, 1234])
async def test_pin_format(store: FakeOperatorStore, pin: object) -> None:
    cells, prisoners = services(store)
    await cells.add(ADMIN, "A1")
    with pytest.raises(Invalid, match="exactly 4 digits"):
        await prisoners.add(ADMIN, "P1", "Ann", pin, "A1")  # type: ignore[arg-type]
    _, six = services(store, digits=6)
    with pytest.raises(Invalid, match="exactly 6 digits"):
        await six.add(ADMIN, "P1", "Ann", "1234", "A1")


async def test_prisoner_acts_and_rights(store: FakeOperatorStore) -> None:
    cells, prisoners = services(store)
    await cells.add(ADMIN, "A1")
    await cells.add(ADMIN, "B1")
    for bad in ("", "P 1", "P-1", "x" * 33):
        with pytest.raises(Invalid, match="invalid prison number"):
            await prisoners.add(ADMIN, bad, "Ann", "1234", "A1")
    with pytest.raises(Invalid, match="name must not be empty"):
        await prisoners.add(ADMIN, "P1", "  ", "1234", "A1")
    with pytest.raises(NotFound, match="no cell"):
        await prisoners.add(ADMIN, "P1", "Ann", "1234", "Z9")
    with pytest.raises(Refused):
        await prisoners.add(OFFICER, "P1", "Ann", "1234", "A1")
    await prisoners.add(ADMIN, "P1", "Ann", "1234", "A1")
    with pytest.raises(Conflict, match="already exists"):
        await prisoners.add(ADMIN, "P1", "Ann", "4321", "B1")
    with pytest.raises(Conflict, match="already in cell A1"):
        await prisoners.move(ADMIN, "P1", "A1")
    assert (await prisoners.move(ADMIN, "P1", "B1")).cell == "B1"
    with pytest.raises(Refused):
        await prisoners.move(OFFICER, "P1", "A1")
    suspended = await prisoners.suspend(OFFICER, "P1", "adjudication")
    assert (suspended.active, suspended.suspended_reason) == (False, "adjudication")
    with pytest.raises(Refused, match="only an admin may reinstate"):
        await prisoners.reinstate(OFFICER, "P1")
    assert (await prisoners.reinstate(ADMIN, "P1")).active
    with pytest.raises(Invalid, match="1 to 1440 minutes"):
        await prisoners.set_limit(ADMIN, "P1", 1441)
    assert (await prisoners.set_limit(ADMIN, "P1", 10)).max_call_s == 600
    assert (await prisoners.set_limit(ADMIN, "P1", 0)).max_call_s is None
    detail = await prisoners.get("P1")
    assert (detail.money.balance, detail.limits.site_max_call_s) == (0, 1800)
    with pytest.raises(NotFound):
        await prisoners.get("NOBODY")
    actions = [n.action for n in store.state.audit if n.target == "prisoner:P1"]
    assert actions == ["prisoner_add", "move", "suspend", "resume", "limit", "limit"]
