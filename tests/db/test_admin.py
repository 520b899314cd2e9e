"""The operator's services on the SQL store in one session (SessionStore), on SQLite: the rows
they write (the CLI tests cover both databases)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.domain.pins import pin_matches
from callcontrol.operator_services import OperatorServices, session_services
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol.services.errors import Conflict, Invalid, NotFound, SharedPin

SECRET = b"another-test-secret-0123456789"
OPS, GOVERNOR = Actor("ops", OPERATOR), Actor("governor", "admin")


@pytest.fixture
async def session(sqlite_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(sqlite_url)
    try:
        async with session_factory(engine)() as s:
            ops = services(s)
            await ops.cells.add(OPS, "A1-01")
            await ops.prisoners.add(OPS, "P1", "Ann", "1234", "A1-01")
            await s.commit()
            yield s
    finally:
        await engine.dispose()


def services(s: AsyncSession, digits: int = 4) -> OperatorServices:
    return session_services(s, pin_keys=lambda: SECRET, pin_digits=digits, max_social=5)


async def _row(session: AsyncSession, table: type[m.Base], **where: str) -> m.Base:
    column, value = next(iter(where.items()))
    found = await session.scalar(select(table).where(getattr(table, column) == value))
    assert found is not None
    return found


async def test_pin_hash_checks_with_the_domain(session: AsyncSession) -> None:
    ops = services(session)
    p = await _row(session, m.Prisoner, prison_number="P1")
    assert isinstance(p, m.Prisoner)
    assert pin_matches(SECRET, "P1", "1234", p.pin_hash)
    assert not pin_matches(SECRET, "P1", "1235", p.pin_hash)
    await ops.prisoners.set_pin(OPS, "P1", "1234")  # the same PIN again: not a cellmate's
    await ops.prisoners.add(OPS, "P2", "Bo", "2222", "A1-01")
    with pytest.raises(SharedPin, match="already has this PIN"):
        await ops.prisoners.set_pin(OPS, "P1", "2222")
    with pytest.raises(Invalid, match="exactly 6 digits"):
        await services(session, digits=6).prisoners.set_pin(OPS, "P1", "1234")


async def test_sip_passwords(session: AsyncSession) -> None:
    cells = services(session).cells
    _, generated = await cells.add(OPS, "A1-02")
    assert len(generated) == 24
    _, other = await cells.add(OPS, "A1-03")
    assert other != generated
    for bad in ("", "a" * 11, "a" * 129, "has space in it", "semi;colon-pass", "hash#password",
                "tab\tin-password", "ünïcode-pässwörd"):  # fmt: skip
        with pytest.raises(Invalid, match="SIP password"):
            await cells.add(OPS, "A1-09", bad)
    view, given = await cells.add(OPS, "A1-04", "Aa1!\"$%&'()*+,-./:<=>?@[]^_`{|}~")
    assert not hasattr(view, "sip_md5_cred") and not hasattr(view, "sip_password")
    # Only the digest hash is kept: HA1 = MD5(username:realm:password), realm written down.
    cell = await _row(session, m.Cell, name="A1-04")
    assert isinstance(cell, m.Cell) and cell.sip_realm == "callcontrol"
    expected = hashlib.md5(f"A1-04:callcontrol:{given}".encode()).hexdigest()
    assert cell.sip_md5_cred == expected
    assert (await cells.check_sip_password("A1-04", given)).name == "A1-04"
    with pytest.raises(Invalid, match="not cell A1-04's SIP password"):
        await cells.check_sip_password("A1-04", given + "x")
    _, new = await cells.set_sip_password(OPS, "A1-04")
    assert new != given and len(new) == 24
    await session.refresh(cell)
    assert cell.sip_md5_cred == hashlib.md5(f"A1-04:callcontrol:{new}".encode()).hexdigest()
    with pytest.raises(NotFound, match="no cell"):
        await cells.set_sip_password(OPS, "Z9-99")


async def test_block_before_listed_then_approve(session: AsyncSession) -> None:
    contacts = services(session).contacts
    c = await contacts.block(OPS, "P1", "020 7946 0000", label="ex")
    assert (c.number, c.status, c.kind, c.label) == ("+442079460000", "blocked", "social", "ex")
    with pytest.raises(Conflict, match="already blocked"):
        await contacts.block(OPS, "P1", "+442079460000")
    with pytest.raises(Conflict, match="already listed"):
        await contacts.add(OPS, "P1", "020 7946 0000", "social")
    await contacts.approve(GOVERNOR, "P1", "020 7946 0000", "appeal upheld")
    with pytest.raises(Conflict, match="already approved"):
        await contacts.approve(GOVERNOR, "P1", "020 7946 0000")
    history = await contacts.history("P1")
    assert [(h.action, h.old_status, h.new_status, h.changed_by, h.note) for h in history] == [
        ("blocked", "", "blocked", "ops", "not listed"),
        ("approved", "blocked", "approved", "governor", "appeal upheld"),
    ]


async def test_changed_by_is_required(session: AsyncSession) -> None:
    ops = services(session)
    with pytest.raises(Invalid, match="changed by"):
        await ops.contacts.add(Actor(" ", OPERATOR), "P1", "020 7946 0000", "social")
    with pytest.raises(Invalid, match="changed by"):
        await ops.numbers.block(Actor("", OPERATOR), "116123")


async def test_lists(session: AsyncSession) -> None:
    ops = services(session)
    await ops.cells.add(OPS, "B2")
    await ops.prisoners.add(OPS, "P0", "Zed", "0000", "B2")
    assert [c.name for c in await ops.cells.list()] == ["A1-01", "B2"]
    rows = [(p.prison_number, p.cell) for p in await ops.prisoners.list()]
    assert rows == [("P0", "B2"), ("P1", "A1-01")]
    await ops.numbers.allow(OPS, "116 123", True, "Samaritans")
    await ops.numbers.block(Actor("security", OPERATOR), "116123")  # same entry, now blocked
    [entry] = await ops.numbers.list()
    assert (entry.number, entry.policy, entry.privileged, entry.label, entry.changed_by) == (
        "116123", "blocked", False, "Samaritans", "security",
    )  # fmt: skip
    assert await session.scalar(select(func.count()).select_from(m.GlobalNumber)) == 1
