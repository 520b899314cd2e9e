"""Issue 12's targets, each with the benchmark's figure and "met" or "missed" (pure: from the
reports of micro/ and run.py). A figure the run did not produce is "not measured", with why,
never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callcontrol_lab.bench.worker_totals import NOT_REPORTED

DECISIONS_PER_S = 1000.0
SETTLEMENTS_PER_S = 1000.0
CPU_MS_PER_DECISION = 1.0
P99_MS = 20.0
P99_IN_FLIGHT = 50
HISTORY_RATIO = 0.9  # the rate with history at least 90% of the rate on an empty database
LADDER_RATIO = 0.9
SETUP_ADDED_P99_MS = 20.0
SETUP_RATE = 20.0
CAPACITY = 250
CAPACITY_OF_STATIC = 0.9


@dataclass(frozen=True)
class Target:
    goal: str
    figure: str  # what was measured, or why nothing was
    met: bool | None  # None: not measured, or a figure with no target of its own

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "-" if self.figure and not self.figure.startswith("not ") else "not measured"
        return "met" if self.met else "missed"


def table(targets: list[Target]) -> str:
    rows = ["| target | figure | |", "|---|---|---|"]
    rows += [f"| {t.goal} | {t.figure} | {t.verdict} |" for t in targets]
    return "\n".join(rows)


# --- the micro-benchmark ------------------------------------------------------------------------


def micro_targets(report: dict[str, Any] | None) -> list[Target]:
    names = (
        f"decisions/s on PostgreSQL >= {DECISIONS_PER_S:,.0f}",
        f"settlements/s on PostgreSQL >= {SETTLEMENTS_PER_S:,.0f}",
        f"daemon CPU per decision <= {CPU_MS_PER_DECISION:g} ms",
        f"decision p99 < {P99_MS:g} ms at {P99_IN_FLIGHT} in flight",
    )
    if not report:
        return [Target(n, "not measured (no micro-benchmark in this run)", None) for n in names]
    ours, settle = report["ours"], report["ours"]["settle"]
    where = "" if report["database"] == "postgresql" else f" (on {report['database']})"
    pg = report["database"] == "postgresql"
    conc = report["concurrency"]
    cpu = ours["cpu"]["server_ms_per_request"]
    out = [
        Target(names[0], f"{ours['decisions_per_s']:,.0f}/s{where}",
               ours["decisions_per_s"] >= DECISIONS_PER_S if pg else None),
        Target(names[1], f"{settle['per_s']:,.0f}/s{where}",
               settle["per_s"] >= SETTLEMENTS_PER_S if pg else None),
        Target(names[2], f"{cpu:.2f} ms (settlement {settle['cpu']['server_ms_per_request']:.2f})",
               cpu <= CPU_MS_PER_DECISION),
        Target(names[3], f"{ours['p99_ms']:.1f} ms at {conc} in flight"
               + ("" if conc == P99_IN_FLIGHT else f" (not {P99_IN_FLIGHT}: no verdict)"),
               ours["p99_ms"] < P99_MS if conc == P99_IN_FLIGHT else None),
    ]  # fmt: skip
    for what, r in (("decision", ours), ("settlement", settle)):
        n, sessions = r["db_statements_per_request"], r["db_checkouts_per_request"]
        figure = (
            f"{n:g} ({sessions:g} sessions)"
            if n or not sessions
            else f"not counted (sent outside SQLAlchemy; {sessions:g} sessions)"
        )
        out.append(Target(f"SQL statements per {what} (figure only)", figure, None))
    out.append(history_target(report))
    return out


def history_target(report: dict[str, Any] | None) -> Target:
    goal = f"decisions/s with history >= {HISTORY_RATIO:.0%} of empty"
    h = (report or {}).get("history")
    if not h:
        error = (report or {}).get("history_error")
        why = f"the history's run failed: {error}" if error else "run with --history"
        return Target(goal, f"not measured ({why})", None)
    empty, full = report["ours"]["decisions_per_s"], h["run"]["ours"]["decisions_per_s"]  # type: ignore[index]
    tables = h.get("details", {}).get("tables", {})
    rows = sum(tables.get(t, 0) for t in ("calls", "call_decisions", "ledger_entries"))
    size = f"{h['prisoners']:,} prisoners" + (f", {rows:,} rows" if rows else "")
    ratio = h["ratio_decisions"]
    cpu = (
        h["run"]["ours"]["cpu"]["server_ms_per_request"],
        report["ours"]["cpu"]["server_ms_per_request"],
    )  # type: ignore[index]
    figure = (
        f"{full:,.0f}/s against {empty:,.0f}/s empty: {ratio} ({size}; settlements "
        f"{h['ratio_settlements']}; daemon CPU a decision {cpu[0]:.2f} against {cpu[1]:.2f} ms)"
    )
    return Target(goal, figure, ratio >= HISTORY_RATIO if ratio is not None else None)


# --- make bench ----------------------------------------------------------------------------------


def ladder_target(results: dict[str, Any]) -> Target:
    goal = f"ladder: daemon/static sustained rate >= {LADDER_RATIO:g} (same run)"
    c = results.get("comparison") or {}
    rates = c.get("sustained_cps") or {}
    d, s = rates.get("daemon"), rates.get("static")
    if "daemon" not in rates or "static" not in rates:
        return Target(goal, "not measured (both ways are needed: --modes static,daemon)", None)
    if not d or not s:
        return Target(goal, f"daemon {d}, static {s} calls/s: one sustained no step", False)
    ratio = c.get("ratio_daemon_to_static")
    return Target(goal, f"{d:g} / {s:g} calls/s = {ratio}", ratio >= LADDER_RATIO)


def setup_target(results: dict[str, Any]) -> Target:
    goal = f"setup: <= {SETUP_ADDED_P99_MS:g} ms added at p99 (post-PIN) at {SETUP_RATE:g} calls/s"
    rate = results.get("latency_rate")
    c = results.get("comparison") or {}
    added = c.get("daemon_adds_at_p99_ms")
    if added is None:
        why = f"the daemon's and the static way's steps at {rate:g} calls/s are both needed"
        return Target(goal, f"not measured ({why})", None)
    failed = [
        w["mode"]
        for w in results.get("ways", [])
        for s in w["steps"]
        if s["rate"] == rate and not s["passed"]
    ]
    figure = f"{added:g} ms at {rate:g} calls/s (p50: {c.get('daemon_adds_at_p50_ms')} ms)"
    if failed:
        figure += f"; the step failed for {', '.join(failed)}"
    ok = added <= SETUP_ADDED_P99_MS and not failed
    return Target(goal, figure, ok if rate == SETUP_RATE else None)


def capacity_target(results: dict[str, Any]) -> Target:
    goal = (
        f"capacity: >= {CAPACITY} recorded calls at once, none refused or lost (else within "
        f"{1 - CAPACITY_OF_STATIC:.0%} of the static way's, same run)"
    )
    k = results.get("concurrent")
    if not k:
        return Target(goal, "not measured (no capacity run of the daemon)", None)
    lost = k["recordings"]["expected"] - k["recordings"]["stored"]
    refused = k["attempted"] - k["connected"]
    clean = refused == 0 and lost == 0 and k["mismatches"] == 0
    figure = (
        f"daemon: peak {k['peak_concurrent']} at once, {refused} refused, {lost} recordings "
        f"lost, {k['mismatches']} mismatches"
    )
    static = results.get("concurrent_static")
    if static:
        figure += f"; static: peak {static['peak_concurrent']}"
    if k["peak_concurrent"] >= CAPACITY:
        return Target(goal, figure, clean)
    if static and static["peak_concurrent"]:
        near = k["peak_concurrent"] >= CAPACITY_OF_STATIC * static["peak_concurrent"]
        return Target(goal, figure, clean and near)
    return Target(goal, figure, False)


def recordings_targets(results: dict[str, Any]) -> list[Target]:
    r = (results.get("concurrent") or {}).get("worker") or {}

    def fig(key: str, unit: str) -> str:
        value = r.get(key, NOT_REPORTED)
        return NOT_REPORTED if value in (None, NOT_REPORTED) else f"{value:g}{unit}"

    out = [
        Target("recordings: CPU seconds per recorded minute (reported)",
               fig("cpu_s_per_recorded_minute", " s"), None),
        Target("recordings: backlog waiting for compression, peak (reported)",
               fig("backlog_peak", ""), None),
        Target("recordings: time to drain the backlog (reported)", fig("drain_s", " s"), None),
    ]  # fmt: skip
    out.append(none_lost(results))
    return out


def none_lost(results: dict[str, Any]) -> Target:
    goal = "recordings: none lost (daemon ladder steps passed and capacity run)"
    expected = stored = 0
    for w in results.get("ways", []):
        if w["mode"] == "daemon":
            for s in w["steps"]:
                if s["passed"]:
                    expected += s["figures"]["recordings"]["expected"]
                    stored += s["figures"]["recordings"]["stored"]
    k = results.get("concurrent")
    if k:
        expected += k["recordings"]["expected"]
        stored += k["recordings"]["stored"]
    if not expected:
        return Target(goal, "not measured (no recorded call of the daemon)", None)
    return Target(goal, f"{stored} of {expected} stored and verified", stored == expected)


def bench_targets(results: dict[str, Any]) -> list[Target]:
    """Every target of issue 12, in its order."""
    return [
        *micro_targets(results.get("micro"))[:4],
        ladder_target(results),
        setup_target(results),
        capacity_target(results),
        history_target(results.get("micro")),
        *recordings_targets(results),
        *micro_targets(results.get("micro"))[4:6],
    ]
