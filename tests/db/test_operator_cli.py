"""The CLI on the operator's services (SQLite and PostgreSQL): the queue of pending contacts,
reasons kept in the history and the audit log, and `cell disable` / `prisoner suspend` run
through the Supervisor, reporting the calls still open that no one could cut."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.operator_services import session_services
from tests.db.conftest import Cli


@pytest.fixture
def prison(cli: Cli) -> Cli:
    cli.ok("cell", "add", "A1-01")
    for number, name, pin in (("A1234BC", "Ann", "1357"), ("B5678CD", "Bo", "2468")):
        cli.ok("prisoner", "add", number, "--name", name, "--pin-stdin", "--cell", "A1-01",
               stdin=f"{pin}\n")  # fmt: skip
    return cli


def test_the_queue_across_prisoners_and_reasons(prison: Cli) -> None:
    assert prison.ok("contact", "pending").out.strip() == "no contacts waiting for approval"
    prison.ok("contact", "add", "A1234BC", "020 7946 0000", "--kind", "social", "--by", "jo")
    asyncio.run(_kiosk_request(prison.url))
    queue = prison.ok("contact", "pending", "--json").json()
    assert [(q["prison_number"], q["number"], q["requested_by"], q["cell"]) for q in queue] == [
        ("A1234BC", "+442079460000", "jo", "A1-01"),
        ("B5678CD", "+441134960000", "B5678CD via kiosk", "A1-01"),
    ]
    assert "B5678CD via kiosk" in prison.ok("contact", "pending").out
    prison.ok("contact", "approve", "A1234BC", "020 7946 0000", "--reason", "known family")
    prison.ok("contact", "block", "B5678CD", "0113 496 0000", "--reason", "victim", "--by", "jo")
    assert prison.ok("contact", "pending", "--json").json() == []
    history = prison.ok("contact", "history", "B5678CD", "--json").json()
    assert [(h["action"], h["changed_by"], h["note"]) for h in history] == [
        ("requested", "B5678CD via kiosk", "social contact"),
        ("blocked", "jo", "victim"),
    ]
    audit = prison.ok("audit", "list", "--json").json()
    assert (audit[0]["actor"], audit[0]["action"], audit[0]["reason"]) == (
        "jo", "contact_block", "victim"
    )  # fmt: skip
    assert audit[1]["action"] == "contact_approve" and audit[1]["role"] == "operator"


async def _kiosk_request(url: str) -> None:
    engine = make_engine(url)
    try:
        async with session_factory(engine).begin() as s:
            await session_services(s).contacts.request(
                "B5678CD", "0113 496 0000", "social", "Dad", "kiosk"
            )
    finally:
        await engine.dispose()


def test_disable_reports_open_calls_it_could_not_cut(prison: Cli) -> None:
    """Without a token and without AMI, the command line cannot cut a live call: it says so,
    names the calls, and exits 1; the cell is disabled all the same (new calls refused)."""
    call_id = asyncio.run(_open_call(prison.url))
    result = prison("cell", "disable", "A1-01", "--reason", "misused", "--json")
    assert result.status == 1
    data = json.loads(result.out)
    assert data["enabled"] is False and data["disabled_reason"] == "misused"
    assert [c["call_id"] for c in data["live_calls"]["calls_not_cut"]] == [call_id]
    assert f"NOT cut ({call_id})" in result.err
    result = prison("prisoner", "suspend", "A1234BC", "--reason", "adjudication")
    assert result.status == 1 and "still open in the database NOT cut" in result.out
    [p] = [p for p in prison.ok("prisoner", "list", "--json").json() if p["active"] is False]
    assert p["prison_number"] == "A1234BC"
    actions = [(e["action"], e["target"]) for e in prison.ok("audit", "list", "--json").json()]
    assert actions[:2] == [("suspend", "prisoner:A1234BC"), ("disable", "cell:A1-01")]
    assert "cut" not in [a for a, _ in actions]  # nothing was sent to Asterisk


def test_the_shells_operator_enables_with_a_reason(prison: Cli) -> None:
    prison.ok("cell", "disable", "A1-01")
    # The CLI's actor is the shell's operator: it holds the database, so it may enable.
    prison.ok("cell", "enable", "A1-01", "--reason", "repaired")
    audit = prison.ok("audit", "list", "--json").json()
    assert (audit[0]["action"], audit[0]["reason"], audit[0]["role"]) == (
        "enable", "repaired", "operator"
    )  # fmt: skip


async def _open_call(url: str) -> int:
    engine = make_engine(url)
    try:
        async with session_factory(engine).begin() as s:
            cell = await s.scalar(select(m.Cell.id).where(m.Cell.name == "A1-01"))
            query = select(m.Prisoner.id).where(m.Prisoner.prison_number == "A1234BC")
            prisoner = await s.scalar(query)
            d = m.CallDecision(
                handset="A1-01", cell_id=cell, prisoner_id=prisoner, dialled="02079460000",
                number="+442079460000", outcome="allow", reason="approved_contact",
                channel="PJSIP/A1-01-1", uniqueid="1700000000.1",
            )  # fmt: skip
            s.add(d)
            await s.flush()
            c = m.Call(
                decision_id=d.id, prisoner_id=prisoner, cell_id=cell, number="+442079460000",
                channel=d.channel, uniqueid=d.uniqueid, started_at=datetime.now(UTC),
            )  # fmt: skip
            s.add(c)
            await s.flush()
            return c.id
    finally:
        await engine.dispose()
