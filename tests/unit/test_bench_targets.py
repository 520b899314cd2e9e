"""Issue 12's targets as bench.md shows them: met, missed, or not measured (never a guess)."""

from __future__ import annotations

import copy
from typing import Any

from callcontrol_lab.bench.targets import (
    Target,
    bench_targets,
    capacity_target,
    history_target,
    ladder_target,
    micro_targets,
    none_lost,
    recordings_targets,
    setup_target,
    table,
)
from callcontrol_lab.bench.worker_totals import NOT_REPORTED


def request(per_s: float, p99: float, cpu_ms: float, stmts: float = 5.0) -> dict[str, Any]:
    return {
        "decisions_per_s": per_s, "per_s": per_s, "p99_ms": p99,
        "cpu": {"server_ms_per_request": cpu_ms},
        "db_statements_per_request": stmts, "db_checkouts_per_request": 1.0,
    }  # fmt: skip


def micro(rate: float = 1200.0, p99: float = 15.0, cpu: float = 0.8, **over: Any) -> dict[str, Any]:
    ours = request(rate, p99, cpu)
    ours["settle"] = request(rate, p99, cpu)
    return {"database": "postgresql", "concurrency": 50, "ours": ours, **over}


def verdicts(targets: list[Target]) -> list[str]:
    return [t.verdict for t in targets]


def test_micro_targets_met_and_missed() -> None:
    assert verdicts(micro_targets(micro())[:4]) == ["met"] * 4
    assert verdicts(micro_targets(micro(rate=999.0, p99=20.0, cpu=1.01))[:4]) == ["missed"] * 4
    # p99 at another concurrency than 50 is not the target's figure.
    other = micro_targets(micro(concurrency=20))[3]
    assert other.met is None and "20 in flight" in other.figure
    # SQLite's rates are figures, not PostgreSQL's targets.
    assert micro_targets(micro(database="sqlite"))[0].met is None
    # Statements: a figure, or why there is none.
    shown = micro_targets(micro())[4]
    assert shown.figure.startswith("5 ") and shown.verdict == "-"
    uncounted = micro()
    uncounted["ours"]["db_statements_per_request"] = 0
    assert "not counted" in micro_targets(uncounted)[4].figure
    assert verdicts(micro_targets(None)) == ["not measured"] * 4


def with_history(empty: float, full: float) -> dict[str, Any]:
    report = micro(rate=empty)
    report["history"] = {
        "prisoners": 10_000, "run": micro(rate=full), "details": {"tables": {"calls": 5}},
        "ratio_decisions": round(full / empty, 3), "ratio_settlements": 1.0,
    }  # fmt: skip
    return report


def test_history_within_ten_percent() -> None:
    assert history_target(with_history(1000, 900)).verdict == "met"
    assert history_target(with_history(1000, 899)).verdict == "missed"
    assert history_target(with_history(1000, 1300)).verdict == "met"
    assert history_target(micro()).verdict == "not measured"
    failed = history_target(micro(history_error="BenchmarkError: no room"))
    assert failed.verdict == "not measured" and "no room" in failed.figure


def ladder(static: float | None, daemon: float | None, p99: dict[str, float]) -> dict[str, Any]:
    figures = {"recordings": {"expected": 400, "stored": 400}}
    ways = [
        {"mode": m, "steps": [{"rate": 20.0, "passed": True, "figures": figures}]}
        for m in ("static", "daemon")
    ]
    comparison: dict[str, Any] = {
        "sustained_cps": {"static": static, "daemon": daemon},
        "ratio_daemon_to_static": round(daemon / static, 2) if static and daemon else None,
    }
    if p99:
        comparison["daemon_adds_at_p99_ms"] = p99["daemon"] - p99["static"]
        comparison["daemon_adds_at_p50_ms"] = 1.0
    return {"ways": ways, "comparison": comparison, "latency_rate": 20.0}


def test_ladder_and_setup() -> None:
    r = ladder(30, 27, {"static": 30.0, "daemon": 50.0})
    assert ladder_target(r).verdict == "met" and setup_target(r).verdict == "met"
    r = ladder(30, 26, {"static": 30.0, "daemon": 50.5})
    assert ladder_target(r).verdict == "missed" and setup_target(r).verdict == "missed"
    failed = ladder(30, 27, {"static": 30.0, "daemon": 35.0})
    failed["ways"][1]["steps"][0]["passed"] = False
    assert (
        setup_target(failed).verdict == "missed"
        and "failed for daemon" in setup_target(failed).figure
    )
    assert setup_target(ladder(30, 27, {})).verdict == "not measured"
    only_daemon = {"comparison": {"sustained_cps": {"daemon": 12}}}
    assert ladder_target(only_daemon).verdict == "not measured"
    at_ten = ladder(30, 27, {"static": 30.0, "daemon": 35.0})
    at_ten["latency_rate"] = 10.0
    at_ten["ways"] = []
    assert setup_target(at_ten).met is None  # a figure, but not at the target's 20 calls/s


def run(peak: int, connected: int = 300, stored: int = 300) -> dict[str, Any]:
    return {
        "peak_concurrent": peak, "attempted": 300, "connected": connected, "mismatches": 0,
        "passed": True, "recordings": {"expected": 300, "stored": stored},
    }  # fmt: skip


def test_capacity() -> None:
    assert capacity_target({"concurrent": run(250)}).verdict == "met"
    assert capacity_target({"concurrent": run(260, connected=299)}).verdict == "missed"
    assert capacity_target({"concurrent": run(260, stored=299)}).verdict == "missed"
    # Below 250: within 10% of the static way's, measured in the same run.
    near = {"concurrent": run(200), "concurrent_static": run(220)}
    assert (
        capacity_target(near).verdict == "met"
        and "static: peak 220" in capacity_target(near).figure
    )
    assert capacity_target({"concurrent": run(190), "concurrent_static": run(220)}).met is False
    assert capacity_target({"concurrent": run(200)}).verdict == "missed"
    assert capacity_target({}).verdict == "not measured"


def test_recordings_reported_or_said_absent() -> None:
    worker = {"cpu_s_per_recorded_minute": 0.8, "backlog_peak": 12, "drain_s": 40.5}
    found = recordings_targets({"concurrent": {**run(250), "worker": worker}})
    assert [t.figure for t in found[:3]] == ["0.8 s", "12", "40.5 s"]
    absent = {k: NOT_REPORTED for k in worker}
    said = recordings_targets({"concurrent": {**run(250), "worker": absent}})
    assert [t.figure for t in said[:3]] == [NOT_REPORTED] * 3
    assert [t.figure for t in recordings_targets({})[:3]] == [NOT_REPORTED] * 3
    assert none_lost({"concurrent": run(250)}).verdict == "met"
    assert none_lost({"concurrent": run(250, stored=299)}).verdict == "missed"
    assert none_lost({}).verdict == "not measured"


def test_the_whole_table() -> None:
    results: dict[str, Any] = {
        **ladder(30, 27, {"static": 30.0, "daemon": 45.0}),
        "concurrent": run(250),
        "micro": with_history(1200, 1150),
    }
    targets = bench_targets(results)
    assert len(targets) == 14
    assert verdicts(targets)[:8] == ["met"] * 8
    text = table(targets)
    assert text.startswith("| target | figure | |") and text.count("\n") == 15
    missing = copy.deepcopy(results)
    del missing["micro"]
    # The micro-benchmark's four, the history, the recordings worker's three (no worker here).
    assert verdicts(bench_targets(missing)).count("not measured") == 8


def test_bench_md_ends_with_the_targets() -> None:
    from callcontrol_lab.bench.run import markdown
    from callcontrol_lab.simulator.load.report import machine

    step = {"connected": 400, "attempted": 400, "post_pin_ms": {"n": 400, "p50": 10, "p95": 20,
            "p99": 30}, "recordings": {"expected": 400, "stored": 400}}  # fmt: skip
    results: dict[str, Any] = {
        **ladder(30, 27, {"static": 30.0, "daemon": 45.0}),
        "machine": machine(), "started": "today", "command": "make bench", "hold_s": 2.0,
        "step_s": 20.0,
        "concurrent": {**run(250), "target": 250, "worker": {}},
        "concurrent_static": {**run(260), "target": 250},
    }  # fmt: skip
    for way in results["ways"]:
        way["sustained_cps"] = 30
        way["steps"][0]["figures"] = step
    text = markdown(results)
    assert "Concurrent recorded calls, static way: peak 260" in text
    targets = text.split("## Issue 12's targets", 1)[1]
    assert (
        "| ladder: daemon/static sustained rate >= 0.9 (same run) | 27 / 30 calls/s = 0.9 | met |"
        in targets
    )
    assert f"| {NOT_REPORTED} | not measured |" in targets
