"""The operator's use cases called directly, on SQLite (the CLI tests cover both databases)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db import admin
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.admin import AdminError
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.domain.pins import pin_matches

SECRET = b"another-test-secret-0123456789"


@pytest.fixture
async def session(sqlite_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(sqlite_url)
    try:
        async with session_factory(engine)() as s:
            await admin.add_cell(s, "A1-01")
            await admin.add_prisoner(s, "P1", "Ann", "1234", "A1-01", SECRET)
            await s.commit()
            yield s
    finally:
        await engine.dispose()


async def test_pin_hash_checks_with_the_domain(session: AsyncSession) -> None:
    p = await admin.get_prisoner(session, "P1")
    assert pin_matches(SECRET, "P1", "1234", p.pin_hash)
    assert not pin_matches(SECRET, "P1", "1235", p.pin_hash)
    await admin.set_pin(session, "P1", "1234", SECRET)  # the same PIN again: not a cellmate's
    await admin.add_prisoner(session, "P2", "Bo", "2222", "A1-01", SECRET)
    with pytest.raises(AdminError, match="already has this PIN"):
        await admin.set_pin(session, "P1", "2222", SECRET)
    with pytest.raises(AdminError, match="exactly 6 digits"):
        await admin.set_pin(session, "P1", "1234", SECRET, pin_digits=6)


async def test_sip_passwords(session: AsyncSession) -> None:
    _, generated = await admin.add_cell(session, "A1-02")
    assert len(generated) == 24
    _, other = await admin.add_cell(session, "A1-03")
    assert other != generated
    for bad in ("", "a" * 11, "a" * 129, "has space in it", "semi;colon-pass", "hash#password",
                "tab\tin-password", "ünïcode-pässwörd"):  # fmt: skip
        with pytest.raises(AdminError, match="SIP password"):
            await admin.add_cell(session, "A1-09", bad)
    cell, given = await admin.add_cell(session, "A1-04", "Aa1!\"$%&'()*+,-./:<=>?@[]^_`{|}~")
    # Only the digest hash is kept: HA1 = MD5(username:realm:password), realm written down.
    assert cell.sip_realm == "callcontrol"
    expected = hashlib.md5(f"A1-04:callcontrol:{given}".encode()).hexdigest()
    assert cell.sip_md5_cred == expected
    assert not hasattr(cell, "sip_password")
    cell, new = await admin.set_sip_password(session, "A1-04")
    assert new != given and len(new) == 24
    assert cell.sip_md5_cred == hashlib.md5(f"A1-04:callcontrol:{new}".encode()).hexdigest()
    with pytest.raises(AdminError, match="no cell"):
        await admin.set_sip_password(session, "Z9-99")


async def test_block_before_listed_then_approve(session: AsyncSession) -> None:
    c = await admin.block_contact(session, "P1", "020 7946 0000", "ops", "GB", label="ex")
    assert (c.number, c.status, c.kind, c.label) == ("+442079460000", "blocked", "social", "ex")
    with pytest.raises(AdminError, match="already blocked"):
        await admin.block_contact(session, "P1", "+442079460000", "ops", "GB")
    with pytest.raises(AdminError, match="already listed"):
        await admin.add_contact(session, "P1", "020 7946 0000", "social", "", "ops", "GB", 5, 5)
    await admin.approve_contact(session, "P1", "020 7946 0000", "governor", "GB")
    with pytest.raises(AdminError, match="already approved"):
        await admin.approve_contact(session, "P1", "020 7946 0000", "governor", "GB")
    history = await admin.contact_history(session, "P1")
    assert [(h.action, h.old_status, h.new_status, h.changed_by) for h in history] == [
        ("blocked", "", "blocked", "ops"),
        ("approved", "blocked", "approved", "governor"),
    ]


async def test_changed_by_is_required(session: AsyncSession) -> None:
    with pytest.raises(AdminError, match="changed by"):
        await admin.add_contact(session, "P1", "020 7946 0000", "social", "", " ", "GB", 5, 5)
    with pytest.raises(AdminError, match="changed by"):
        await admin.block_number(session, "116123", "", "")


async def test_lists(session: AsyncSession) -> None:
    await admin.add_cell(session, "B2")
    await admin.add_prisoner(session, "P0", "Zed", "0000", "B2", SECRET)
    assert [c.name for c in await admin.list_cells(session)] == ["A1-01", "B2"]
    rows = [(p.prison_number, cell) for p, cell in await admin.list_prisoners(session)]
    assert rows == [("P0", "B2"), ("P1", "A1-01")]
    await admin.allow_number(session, "116 123", True, "Samaritans", "ops")
    await admin.block_number(session, "116123", "", "security")  # same entry, now blocked
    [entry] = await admin.list_global_numbers(session)
    assert (entry.number, entry.policy, entry.privileged, entry.label, entry.changed_by) == (
        "116123", "blocked", False, "Samaritans", "security",
    )  # fmt: skip
    assert await session.scalar(select(func.count()).select_from(m.GlobalNumber)) == 1
