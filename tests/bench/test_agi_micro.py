"""The FastAGI micro-benchmark, run small against PostgreSQL: every call allowed and settled
once (as the database says), a report with its fields, and a refusal breaking the run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcontrol import channel_vars as cv
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.tables import Account, LedgerEntry, Reservation
from callcontrol.operator_services import session_services
from callcontrol_lab.bench.micro import (
    CREDIT_PENCE,
    BenchmarkError,
    BrokenBenchmark,
    main,
    reply_to,
    run_micro,
    verdict,
)
from callcontrol_lab.measure import percentile
from tests.conftest import TESTER


def query(url: str, statement: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def check_latencies(r: dict[str, Any]) -> None:
    assert r["decisions_per_s"] > 0
    assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"]


def test_small_run_allows_settles_once_and_reports(pg_database: str) -> None:
    report = asyncio.run(
        run_micro(pg_database, calls=40, concurrency=5, warmup=4, cells=10, talk_seconds=30)
    )
    made = 44  # the warm-up's calls are real calls too

    assert (report["calls"], report["concurrency"], report["warmup"]) == (40, 5, 4)
    assert (report["cells"], report["rounds"]) == (10, 4)
    assert report["database"] == "postgresql" and report["database_version"]
    assert report["client"] == "separate process"
    ours, settle, base = report["ours"], report["ours"]["settle"], report["baseline"]
    assert ours["decisions"] == 40 and ours["outcomes"] == {"allow": 40}
    check_latencies(ours)
    assert settle["count"] == 40 and settle["per_s"] > 0
    assert 0 < settle["p50_ms"] <= settle["max_ms"]
    assert ours["settlements_per_s"] == settle["per_s"] and ours["pairs_per_s"] > 0
    assert ours["db_checkouts_per_request"] > 0 and ours["db_statements_per_request"] > 0
    assert ours["cpu"]["server_ms_per_request"] > 0
    assert base["decisions"] == 40 and base["outcomes"] == {"allow": 40}
    check_latencies(base)
    assert base["db_statements_per_request"] == 0  # the baseline never touches the database
    # An allowed call's round trips: ANSWER, GET DATA, the one SET VARIABLE, CHANNEL STATUS.
    assert ours["agi_commands_per_request"] == 4 and base["agi_commands_per_request"] == 1
    assert report["ratio"] == pytest.approx(ours["decisions_per_s"] / base["decisions_per_s"], 0.01)
    assert report["goal_decisions_per_s"] == 1000
    assert report["goal_met"] == (ours["decisions_per_s"] >= 1000)
    checks = report["checks"]
    assert checks["calls"] == checks["calls_settled"] == checks["charge_entries"] == made
    assert checks["reservations"] == {"settled": made} and checks["calls_open"] == 0
    json.dumps(report)  # it is the JSON report

    # What the database says, read here and not from the report.
    decisions = query(
        pg_database,
        select(m.CallDecision.outcome, m.CallDecision.reason, func.count()).group_by(
            m.CallDecision.outcome, m.CallDecision.reason
        ),
    )
    assert decisions == [("allow", "approved_contact", made)]
    calls = query(pg_database, select(m.Call.id, m.Call.settled_at, m.Call.ended_at))
    assert len(calls) == made
    assert all(settled is not None and ended is not None for _, settled, ended in calls)
    charges = query(
        pg_database,
        select(LedgerEntry.call_id, func.count(), func.sum(LedgerEntry.amount_pence))
        .where(LedgerEntry.kind == "charge")
        .group_by(LedgerEntry.call_id),
    )
    # 30 s to a UK landline at 3.1p a minute: 1.55p, charged 2p, once per call.
    assert sorted(c for c, _, _ in charges) == sorted(c for c, _, _ in calls)
    assert {(n, amount) for _, n, amount in charges} == {(1, -2)}
    charged = query(pg_database, select(m.Call.charge_pence, m.Call.ended_by).distinct())
    assert charged == [(2, "caller")]
    reservations = query(
        pg_database, select(Reservation.status, func.count()).group_by(Reservation.status)
    )
    assert reservations == [("settled", made)]
    accounts = query(pg_database, select(Account.balance_pence, Account.reserved_pence))
    assert len(accounts) == 10
    assert sum(b for b, _ in accounts) == 10 * CREDIT_PENCE - 2 * made
    assert all(reserved == 0 for _, reserved in accounts)


def test_a_refusal_breaks_the_run(pg_database: str) -> None:
    with pytest.raises(BrokenBenchmark) as broken:
        asyncio.run(
            run_micro(
                pg_database,
                calls=6,
                concurrency=3,
                warmup=0,
                cells=6,
                separate_process=False,
                pin_answer="0000",  # nobody's PIN: every call is refused
            )
        )
    assert broken.value.outcomes == {"refuse:wrong_pin": 6}
    assert "not allowed" in str(broken.value)
    assert query(pg_database, select(func.count()).select_from(m.Call)) == [(0,)]
    refused = query(
        pg_database,
        select(m.CallDecision.outcome, m.CallDecision.reason, func.count()).group_by(
            m.CallDecision.outcome, m.CallDecision.reason
        ),
    )
    assert refused == [("refuse", "wrong_pin", 6)]


def test_cli_writes_the_report_and_fails_a_broken_run(
    pg_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    common = ["--database-url", pg_database, "--concurrency", "4", "--cells", "8"]
    common += ["--log-file", str(tmp_path / "daemon.log"), "--same-loop"]
    status = main([*common, "--calls", "12", "--warmup", "0", "--json", str(out)])
    assert status == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["ours"]["decisions"] == 12 and report["baseline"]["decisions"] == 12
    shown = capsys.readouterr().out
    assert "ours: cell-call (decisions)" in shown and "baseline: answers at once" in shown
    assert "goal, 1000 decisions/s" in shown


def test_refuses_a_database_with_cells_of_its_own(pg_database: str) -> None:
    async def add_a_real_cell() -> None:
        engine = make_engine(pg_database)
        try:
            async with session_factory(engine).begin() as s:
                await session_services(s).cells.add(TESTER, "A1-01")
        finally:
            await engine.dispose()

    asyncio.run(add_a_real_cell())
    with pytest.raises(BenchmarkError, match="scratch database"):
        asyncio.run(run_micro(pg_database, calls=1, warmup=0, separate_process=False))
    assert query(pg_database, select(func.count()).select_from(m.Cell)) == [(1,)]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--database-url", "--calls", "--concurrency", "--warmup", "--json"):
        assert option in text


def test_the_scripted_asterisk_answers_like_asterisk() -> None:
    seen: dict[str, str] = {}
    assert reply_to("GET DATA agent-pass 8000 4", "1234", seen) == b"200 result=1234\n"
    assert reply_to('SET VARIABLE CC_REASON "a \\"b\\" \\\\c"', "", seen) == b"200 result=1\n"
    assert seen == {"CC_REASON": 'a "b" \\c'}
    assert reply_to('STREAM FILE pls-hold-while-try ""', "", seen) == b"200 result=0\n"
    assert reply_to("EXEC Playback beep", "", seen) == b"200 result=0\n"


def test_verdict_is_the_dialplan_s() -> None:
    def said(text: str, baseline: bool = False, error: str = "") -> str:
        return verdict((0.01, {cv.ANSWER: text}, error, 4), baseline=baseline)

    allowed = "allow:approved_contact:+442079460000:1800000:yes"
    assert said(allowed) == "allow"
    assert said(allowed.replace("1800000", "500")).startswith("error:")  # under a second
    assert said(allowed.replace("1800000", "0999")).startswith("error:")  # shape, not value
    assert said(allowed + ":extra").startswith("error:")
    assert said("allow please").startswith("error:")
    assert said("refuse:not_approved") == "refuse:not_approved"
    assert said(allowed, error="no close within 30s").startswith("error:")
    assert verdict((0.01, {}, "", 3), baseline=True) == "refuse:no answer"
    assert said(allowed, baseline=True) == "allow"


def testpercentile() -> None:
    values = [float(x) for x in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([], 50) == 0.0 and percentile([7.0], 95) == 7.0
