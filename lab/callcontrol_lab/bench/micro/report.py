"""The report for people: the table of rates, latencies and costs, and a profile's summary."""

from __future__ import annotations

import io
import pstats
from typing import Any

from callcontrol_lab.bench.targets import micro_targets, table


def format_table(report: dict[str, Any]) -> str:
    """The report for people."""
    ours, base, settle = report["ours"], report["baseline"], report["ours"]["settle"]
    head = (
        f"FastAGI micro-benchmark: {report['calls']} calls after {report['warmup']} warm-up, "
        f"concurrency {report['concurrency']}, {report['cells']} cells "
        f"({report['rounds']} round(s)), client in a {report['client']}\n"
        f"database: {report['database']} {report['database_version']} "
        f"({report['database_url']}); {report['machine']['cpus']} CPUs, "
        f"Python {report['machine']['python']}"
    )
    if report["engine_options"]:
        head += f"\nWHAT-IF: engine options over the daemon's: {report['engine_options']}"
    measured = [
        ("ours: cell-call (decisions)", ours["decisions"], ours["decisions_per_s"], ours),
        ("ours: call-end (settlements)", settle["count"], settle["per_s"], settle),
    ]
    if base is not None:
        measured.append(
            ("baseline: answers at once", base["decisions"], base["decisions_per_s"], base)
        )
    rows = [head, ""]
    rows.append(
        f"{'':31s}{'requests':>9s}{'per s':>9s}{'p50 ms':>9s}{'p95 ms':>9s}{'p99 ms':>9s}"
        f"{'max ms':>9s}"
    )
    for name, count, rate, r in measured:
        rows.append(
            f"{name:31s}{count:9d}{rate:9.1f}{r['p50_ms']:9.2f}{r['p95_ms']:9.2f}"
            f"{r['p99_ms']:9.2f}{r['max_ms']:9.2f}"
        )
    rows.append(
        f"{'ours: decide + settle (pairs)':31s}{ours['decisions']:9d}{ours['pairs_per_s']:9.1f}"
    )
    if base is not None:
        rows.append(f"ours / baseline, decisions per second: {report['ratio']:.3f}")
    rows += [
        "",
        f"{'what it cost, per request':31s}{'server':>9s}{'pg':>9s}{'|':>3s}{'server':>8s}"
        f"{'client':>8s}{'pg':>8s}{'other':>8s}{'|':>3s}{'sessions':>9s}{'stmts':>7s}{'conns':>7s}",
        f"{'':31s}{'CPU ms':>9s}{'CPU ms':>9s}{'|':>3s}{'CPU share of the machine, cores':>32s}"
        f"{'|':>3s}{'database, per request':>23s}",
    ]
    for name, _count, _rate, r in measured:
        c = r["cpu"]
        rows.append(
            f"{name:31s}{c['server_ms_per_request']:9.2f}{c['postgres_ms_per_request']:9.2f}"
            f"{'|':>3s}{c['server']:8.2f}{c['client']:8.2f}{c['postgres']:8.2f}{c['other']:8.2f}"
            f"{'|':>3s}{r['db_checkouts_per_request']:9.1f}{r['db_statements_per_request']:7.1f}"
            f"{r['db_connections_opened']:7d}"
        )
    rows += [
        f"(cores: CPU seconds per second of the phases, 1.00 = one core busy, of "
        f"{report['machine']['cpus']}; server = the FastAGI server's process, client = the "
        "scripted Asterisk, pg = the PostgreSQL cluster (when on this machine), other = the "
        "rest of the machine; sessions = pool checkouts, stmts = SQL statements (BEGIN, COMMIT "
        "and pings not counted), conns = new connections in all)",
        "",
    ]
    trips = [(name, r.get("agi_commands_per_request")) for name, _c, _r, r in measured]
    if all(n is not None for _name, n in trips):  # reports before it was counted lack it
        rows += [
            "AGI commands per request (each a round trip to the channel on a real Asterisk): "
            + "; ".join(f"{name} {n:.1f}" for name, n in trips),
            "",
        ]
    goal = report["goal_decisions_per_s"]
    rows.append(
        f"goal, {goal:.0f} decisions/s: {'met' if report['goal_met'] else 'NOT met'} "
        f"({ours['decisions_per_s']:.0f}/s)"
    )
    c = report["checks"]
    rows.append(
        f"checked in the database: {c['calls']} calls allowed and settled, {c['charge_entries']} "
        f"charged once ({c['charged_pence']}p), reservations {c['reservations']}, "
        f"{c['accounts_verified']} accounts equal to their ledger"
    )
    history = report.get("history")
    if history:
        rows += ["", _history_text(history)]
    rows += ["", "issue 12's targets:", table(micro_targets(report))]
    return "\n".join(rows)


def _history_text(h: dict[str, Any]) -> str:
    """The run on a prison's history, beside the run above (on an empty database)."""
    run, settle = h["run"]["ours"], h["run"]["ours"]["settle"]
    tables = h["details"].get("tables", {})
    made = h["details"].get("generated_s")
    rows = [
        f"with history: {h['prisoners']:,} prisoners over {h['days']} days, "
        + ", ".join(f"{tables[t]:,} {t}" for t in ("calls", "call_decisions", "ledger_entries")
                    if t in tables)
        + (
            f"; generated in {made:.0f} s ({h['seconds']:.0f} s with the migrations and the dump)"
            if made is not None
            else f"; {h['how']} in {h['seconds']:.0f} s"
        ),
        f"{'':31s}{'requests':>9s}{'per s':>9s}{'p50 ms':>9s}{'p95 ms':>9s}{'p99 ms':>9s}"
        f"{'CPU ms':>9s}{'stmts':>7s}",
    ]  # fmt: skip
    for name, count, rate, r in (
        ("history: cell-call", run["decisions"], run["decisions_per_s"], run),
        ("history: call-end", settle["count"], settle["per_s"], settle),
    ):
        rows.append(
            f"{name:31s}{count:9d}{rate:9.1f}{r['p50_ms']:9.2f}{r['p95_ms']:9.2f}"
            f"{r['p99_ms']:9.2f}{r['cpu']['server_ms_per_request']:9.2f}"
            f"{r['db_statements_per_request']:7.1f}"
        )
    rows.append(
        f"with history / empty: decisions {h['ratio_decisions']}, settlements "
        f"{h['ratio_settlements']}"
    )
    return "\n".join(rows)


def profile_summary(path: str, top: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()
