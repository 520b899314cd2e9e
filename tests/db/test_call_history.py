"""Call history on real databases (SQLite and PostgreSQL): every filter, paging, the CSV call
detail record (quoting, and formulas neutralised for spreadsheets), the command and GET /calls."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.history_store import SqlHistoryReader, statement
from callcontrol.adapters.db.tables import Recording
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenEntry, TokenFile, digest
from callcontrol.services import call_history, cdr
from callcontrol.services.call_history import HistoryError, HistoryFilter
from tests.db.conftest import Cli
from tests.services.test_supervise import World

Sessions = async_sessionmaker[AsyncSession]
LONDON = ZoneInfo("Europe/London")
# 23:30 UTC on 1 July is 00:30 on 2 July in London (BST): a date filter must be local.
LATE = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
EVIL = '=HYPERLINK("http://evil","x")'


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


async def _decide(s: AsyncSession, **kw: Any) -> m.CallDecision:
    d = m.CallDecision(**kw)
    s.add(d)
    await s.flush()
    return d


async def _call(s: AsyncSession, d: m.CallDecision, **kw: Any) -> m.Call:
    c = m.Call(
        decision_id=d.id, prisoner_id=d.prisoner_id, cell_id=d.cell_id, number=d.number,
        channel="PJSIP/x", uniqueid=f"u{d.id}", started_at=d.at, **kw,
    )  # fmt: skip
    s.add(c)
    await s.flush()
    return c


@pytest.fixture
async def world(sessions: Sessions) -> dict[str, int]:
    """Six decisions, oldest first; returns their ids by name."""
    ids: dict[str, int] = {}
    t = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    async with sessions.begin() as s:
        a, b = (m.Cell(name=n, sip_username=n, sip_md5_cred="0" * 32) for n in ("A1-01", "B2-02"))
        s.add_all([a, b])
        await s.flush()
        p1 = m.Prisoner(prison_number="A1234BC", name="Ann", pin_hash="h1$0", cell_id=a.id)
        p2 = m.Prisoner(prison_number="B5678CD", name="Bob", pin_hash="h1$0", cell_id=b.id)
        s.add_all([p1, p2])
        await s.flush()
        common = {"outcome": "allow", "reason": "approved_contact"}
        d = await _decide(
            s, at=t, handset="A1-01", cell_id=a.id, prisoner_id=p1.id, dialled="02079460000",
            number="+442079460000", **common,
        )  # fmt: skip
        c = await _call(
            s, d, answered_at=t + timedelta(seconds=10), ended_at=t + timedelta(seconds=130),
            talk_seconds=120, charge_pence=6, accepted=True, settled_at=t,
        )  # fmt: skip
        rec = Recording(
            call_id=c.id, prisoner_id=p1.id, cell_id=a.id, number=c.number, started_at=t,
            duration_ms=120000, channels=2, codec="opus", sample_rate=8000, bytes=1,
            sha256="a" * 64, file_name="a.ogg", prev_entry_hash="0" * 64, entry_hash="b" * 64,
        )  # fmt: skip
        s.add(rec)
        ids["connected"], ids["call"] = d.id, c.id
        await s.flush()
        ids["recording"] = rec.id
        ids["evil"] = (
            await _decide(
                s,
                at=t + timedelta(hours=1),
                handset='A1-01,"x"',
                cell_id=a.id,
                prisoner_id=p1.id,
                dialled=EVIL,
                number=None,
                outcome="refuse",
                reason="invalid_number",
            )  # fmt: skip
        ).id
        ids["late"] = (
            await _decide(
                s,
                at=LATE,
                handset="B2-02",
                cell_id=b.id,
                prisoner_id=p2.id,
                dialled="07911123456",
                number="+447911123456",
                outcome="refuse",
                reason="not_approved",
            )  # fmt: skip
        ).id
        ids["intruder"] = (
            await _decide(
                s,
                at=LATE + timedelta(hours=1),
                handset="intruder",
                dialled="999",
                number="999",
                outcome="refuse",
                reason="unknown_handset",
            )  # fmt: skip
        ).id
        d = await _decide(
            s, at=LATE + timedelta(hours=2), handset="A1-01", cell_id=a.id, prisoner_id=p1.id,
            dialled="+442079460000", number="+442079460000", **common,
        )  # fmt: skip
        await _call(s, d, ended_at=d.at + timedelta(seconds=50), accepted=False, talk_seconds=0)
        ids["unanswered"] = d.id
        d = await _decide(
            s, at=LATE + timedelta(hours=3), handset="B2-02", cell_id=b.id, prisoner_id=p2.id,
            dialled="02079460000", number="+442079460000", **common,
        )  # fmt: skip
        await _call(s, d)
        ids["live"] = d.id
    return ids


async def found(sessions: Sessions, **given: Any) -> list[int]:
    query = call_history.parse_filter(tz=LONDON, region="GB", **given)
    got = await call_history.page(SqlHistoryReader(sessions), query)
    return [r.decision_id for r in got.rows]


async def test_every_decision_newest_first_with_its_call(
    sessions: Sessions, world: dict[str, int]
) -> None:
    got = (await call_history.page(SqlHistoryReader(sessions), HistoryFilter())).rows
    assert [r.decision_id for r in got] == sorted(world[k] for k in world if k not in (
        "call", "recording"))[::-1]  # fmt: skip
    first = next(r for r in got if r.decision_id == world["connected"])
    assert (first.call_id, first.recording_id, first.cell, first.prisoner) == (
        world["call"], world["recording"], "A1-01", "A1234BC")  # fmt: skip
    assert (first.talk_seconds, first.charge_pence, first.decision) == (120, 6, "allow")
    assert first.answered_at == datetime(2026, 7, 1, 9, 0, 10, tzinfo=UTC)
    intruder = next(r for r in got if r.decision_id == world["intruder"])
    assert (intruder.cell, intruder.prisoner, intruder.call_id) == (None, None, None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"prisoner": "A1234BC"}, ["unanswered", "evil", "connected"]),
        ({"prisoner": "a1234bc"}, ["unanswered", "evil", "connected"]),
        ({"prisoner": "Z9999ZZ"}, []),
        ({"cell": "B2-02"}, ["live", "late"]),
        ({"number": "020 7946 0000"}, ["live", "unanswered", "connected"]),
        ({"number": "+44 7911 123456"}, ["late"]),
        ({"number": "999"}, ["intruder"]),
        ({"outcome": "allowed"}, ["live", "unanswered", "connected"]),
        ({"outcome": "refused"}, ["intruder", "late", "evil"]),
        ({"outcome": "connected"}, ["connected"]),
        ({"outcome": "not_connected"}, ["unanswered"]),
        ({"outcome": "live"}, ["live"]),
        ({"reason": "not_approved"}, ["late"]),
        ({"reason": "wrong_pin"}, []),
        # Local dates: 23:30 UTC on 1 July is 2 July in London.
        ({"since": "2026-07-02"}, ["live", "unanswered", "intruder", "late"]),
        ({"until": "2026-07-01"}, ["evil", "connected"]),
        ({"since": "2026-07-01", "until": "2026-07-01"}, ["evil", "connected"]),
        ({"since": "2026-07-01T23:30Z", "until": "2026-07-02T00:31"}, ["late"]),
        ({"since": "2026-07-01T10:00:01+01:00", "until": "2026-07-01T23:30Z"}, ["evil"]),
        ({"cell": "A1-01", "outcome": "refused", "reason": "invalid_number"}, ["evil"]),
    ],
)
async def test_each_filter(
    sessions: Sessions, world: dict[str, int], given: dict[str, str], expected: list[str]
) -> None:
    assert await found(sessions, **given) == [world[k] for k in expected]


async def test_pages_by_decision_id(sessions: Sessions, world: dict[str, int]) -> None:
    reader = SqlHistoryReader(sessions)
    everything = await found(sessions, limit=100)
    first = await call_history.page(reader, HistoryFilter(limit=4))
    assert [r.decision_id for r in first.rows] == everything[:4]
    assert first.next_before == everything[3]
    second = await call_history.page(reader, HistoryFilter(limit=4, before=first.next_before))
    assert [r.decision_id for r in second.rows] == everything[4:]
    assert second.next_before is None
    rows = [r.decision_id async for r in call_history.every_row(reader, HistoryFilter(), chunk=2)]
    assert rows == everything


@pytest.mark.parametrize(
    "given",
    [
        {"since": "yesterday"},
        {"since": "2026-07-02", "until": "2026-07-01"},
        {"outcome": "maybe"},
        {"reason": "because"},
        {"limit": "0"},
        {"limit": "10001"},
        {"limit": "-1"},
        {"before": "x"},
    ],
)
def test_bad_filters_are_refused(given: dict[str, str]) -> None:
    with pytest.raises(HistoryError):
        call_history.parse_filter(tz=LONDON, region="GB", **given)


# --- the CSV call detail record ----------------------------------------------------------------


async def test_csv_quotes_every_field_and_neutralises_formulas(
    sessions: Sessions, world: dict[str, int]
) -> None:
    rows = (await call_history.page(SqlHistoryReader(sessions), HistoryFilter())).rows
    text_ = cdr.csv_lines(rows)
    lines = text_.split("\r\n")
    assert lines[0].startswith('"decision_id","call_id","decided_at"')
    assert all(line.startswith('"') and line.endswith('"') for line in lines if line)
    parsed = list(csv.DictReader(io.StringIO(text_)))
    assert len(parsed) == 6 and tuple(parsed[0]) == cdr.COLUMNS
    evil = next(r for r in parsed if r["decision_id"] == str(world["evil"]))
    # The comma and quotes stay inside their field; the formula is shown, never run.
    assert evil["handset"] == 'A1-01,"x"'
    assert evil["dialled"] == "'" + EVIL
    assert evil["number"] == "" and evil["call_id"] == ""
    good = next(r for r in parsed if r["decision_id"] == str(world["connected"]))
    assert good == good | {
        "decided_at": "2026-07-01T09:00:00Z", "answered_at": "2026-07-01T09:00:10Z",
        "ended_at": "2026-07-01T09:02:10Z", "talk_seconds": "120", "charge_pence": "6",
        "recording_id": str(world["recording"]), "privileged": "false",
        "number": "'+442079460000", "decision": "allow", "reason": "approved_contact",
    }  # fmt: skip


@pytest.mark.parametrize(
    "value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "  =cmd|' /C calc'!A0"]
)
def test_every_formula_start_is_neutralised(value: str) -> None:
    assert cdr.neutralise(value) == "'" + value
    assert cdr.neutralise("02079460000") == "02079460000"


# --- the command -------------------------------------------------------------------------------


def test_command_table_json_and_csv(cli: Cli, world: dict[str, int], tmp_path: Path) -> None:
    shown = cli.ok("calls", "history", "--cell", "A1-01", "--limit", "2").out
    assert "A1234BC" in shown and f"--before {world['evil']}" in shown
    data = cli.ok("calls", "history", "--json", "--outcome", "connected").json()
    assert [c["decision_id"] for c in data["calls"]] == [world["connected"]]
    assert data["calls"][0]["recording_id"] == world["recording"]
    assert data["next_before"] is None
    out = tmp_path / "calls.csv"
    done = cli("calls", "history", "--csv", str(out), "--all", "--limit", "1")
    assert done.status == 0, done.err
    assert "6 call(s) written" in done.err
    assert len(list(csv.DictReader(out.open(newline="")))) == 6
    again = cli("calls", "history", "--csv", str(out))
    assert again.status == 2 and "exists" in again.err
    bad = cli("calls", "history", "--since", "last week")
    assert bad.status == 2 and "not a date" in bad.err
    assert cli("calls", "history", "--all").status == 2


# --- GET /calls --------------------------------------------------------------------------------

OFFICER_TOKEN = "officer-token-0123456789abcdef"


@pytest.fixture
async def client(sessions: Sessions, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    tokens = tmp_path / "api-tokens"
    tokens.write_text(TokenEntry("a11ce000", "alice", "officer", digest(OFFICER_TOKEN)).to_json())
    tokens.chmod(0o600)
    from callcontrol.adapters.http.history import HistoryApi

    api = HistoryApi(SqlHistoryReader(sessions), LONDON, "GB")
    app = make_app(World([]).supervisor, TokenFile(tokens), history=api)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_http_json_csv_and_auth(client: TestClient[Any, Any], world: dict[str, int]) -> None:
    auth = {"Authorization": f"Bearer {OFFICER_TOKEN}"}
    assert (await client.get("/calls")).status == 401
    got = await client.get("/calls", params={"cell": "B2-02", "limit": "1"}, headers=auth)
    assert got.status == 200, await got.text()
    data = await got.json()
    assert [c["decision_id"] for c in data["calls"]] == [world["live"]]
    assert data["next_before"] == world["live"]
    got = await client.get("/calls", params={"format": "csv"}, headers=auth)
    assert got.status == 200 and got.content_type == "text/csv"
    assert len(list(csv.DictReader(io.StringIO(await got.text())))) == 6
    got = await client.get("/calls?limit=2", headers=auth | {"Accept": "text/csv"})
    assert got.content_type == "text/csv" and got.headers["X-Next-Before"]
    for bad in ({"since": "soon"}, {"outcome": "x"}, {"format": "xml"}, {"colour": "red"}):
        got = await client.get("/calls", params=bad, headers=auth)
        assert got.status == 400, bad
        assert (await got.json())["error"]


# --- the indexes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "index"),
    [
        ({"cell": "A1-01"}, "ix_call_decisions_cell_id_id"),
        ({"prisoner": "A1234BC"}, "ix_call_decisions_prisoner_id_id"),
        ({"reason": "wrong_pin"}, "ix_call_decisions_reason_id"),
    ],
)
async def test_each_filter_can_be_read_from_its_index(
    pg_database: str, given: dict[str, str], index: str
) -> None:
    """On PostgreSQL, with sequential scans priced out (the tables here are small), each
    filter's query reads its own index: the migration made them, in the shape the query needs."""
    engine = make_engine(pg_database)
    try:
        query = call_history.parse_filter(tz=LONDON, region="GB", **given)
        sql = statement(query).compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
        async with engine.connect() as conn:
            await conn.execute(text("SET enable_seqscan = off"))
            plan = (await conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"))).scalar_one()
    finally:
        await engine.dispose()
    assert index in json.dumps(plan)
