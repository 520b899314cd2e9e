"""A call allowed, whose caller hung up before its hangup handler was pushed (under load, the
AGI can still be deciding when the handset gives up): settled from the AMI hangup, never left
holding its reservation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.adapters.db.tables import Reservation
from callcontrol.domain.call_end import CallEnd, JournalEntry
from callcontrol.operator_services import session_services
from callcontrol.services.settle import Settler
from tests.conftest import TESTER
from tests.db.test_call_store import NOW, allow, facts, the_prisoner


@pytest.fixture
async def stores(pg_database: str) -> AsyncIterator[tuple[SqlCallStore, Settler]]:
    engine = make_engine(pg_database)
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        cell = m.Cell(name="A1-01", sip_username="A1-01", sip_md5_cred="0" * 32)
        s.add(cell)
        await s.flush()
        s.add(m.Prisoner(prison_number="A1234BC", name="J S", pin_hash="h1$00", cell_id=cell.id))
    async with sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 500, "ref")
    yield (
        SqlCallStore(sessions),
        Settler(SqlSettlementStore(sessions), free_drop_s=60, clock=lambda: NOW),
    )
    await engine.dispose()


async def _open(store: SqlCallStore, uniqueid: str) -> None:
    prisoner = await the_prisoner(store)
    assert await store.record(allow(prisoner, uniqueid, reserve=93)) is None


async def _reservation(store: SqlCallStore, uniqueid: str) -> str:
    async with store.sessions() as s:
        return await s.scalar(
            select(Reservation.status)
            .join(m.Call, m.Call.id == Reservation.call_id)
            .where(m.Call.uniqueid == uniqueid)
        )


async def test_a_call_never_bridged_is_settled_at_nothing(
    stores: tuple[SqlCallStore, Settler],
) -> None:
    store, settler = stores
    await _open(store, "7.1")
    done = await settler.settle_after_hangup("7.1", None, NOW + timedelta(seconds=4))
    assert done is not None and (done.accepted, done.charge_pence) == (False, 0)
    assert await _reservation(store, "7.1") == "settled"  # at 0p: the money is free again
    assert await settler.settle_after_hangup("7.1", None, NOW) is None  # once only
    prisoner = await the_prisoner(store)
    assert not (await facts(store, prisoner)).call_in_progress


async def test_the_journals_end_wins_and_an_acceptance_alone_ends_at_the_hangup(
    stores: tuple[SqlCallStore, Settler],
) -> None:
    store, settler = stores
    await _open(store, "7.2")
    end = CallEnd("7.2", NOW, NOW + timedelta(seconds=90), "ANSWER", "16", "PJSIP/A1-01-7.2")
    done = await settler.settle_after_hangup("7.2", JournalEntry(NOW, end), NOW)
    assert done is not None and done.talk_seconds == 90
    await _open(store, "7.3")
    accepted = NOW + timedelta(seconds=5)
    done = await settler.settle_after_hangup(
        "7.3", JournalEntry(accepted, None), accepted + timedelta(seconds=120)
    )
    assert done is not None and done.accepted and done.talk_seconds == 120
    assert await _reservation(store, "7.3") == "settled"
