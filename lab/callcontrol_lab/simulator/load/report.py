"""The figures of a load run, its JSON, its one-screen summary and its chart."""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from callcontrol_lab.measure import percentile
from callcontrol_lab.simulator.load.check import Verdict, post_pin_ms, setup_ms
from callcontrol_lab.simulator.load.runner import ProcWatch, Progress


def percentiles(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """n, p50, p95, p99, max and mean (nearest-rank percentiles); None figures when empty."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(xs),
        "p50": round(percentile(xs, 50), 1),
        "p95": round(percentile(xs, 95), 1),
        "p99": round(percentile(xs, 99), 1),
        "max": round(xs[-1], 1),
        "mean": round(sum(xs) / len(xs), 1),
    }


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def usage(watches: Sequence[ProcWatch]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for w in watches:
        cpu = [s.cpu_pct for s in w.samples]
        rss = [s.rss_mb for s in w.samples]
        out[w.name] = {
            "pid": w.pid,
            "cpu_pct_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
            "cpu_pct_max": max(cpu) if cpu else None,
            "cpu_s": None if w.cpu_s is None else round(w.cpu_s, 2),
            "rss_mb_max": max(rss) if rss else None,
        }
    return out


def figures(
    verdicts: Sequence[Verdict],
    progress: Sequence[Progress],
    watches: Sequence[ProcWatch],
    *,
    settings: dict[str, Any],
    settle_s: float,
    store_problems: Sequence[str],
    started_at: float,
    ended_at: float,
) -> dict[str, Any]:
    outcomes = Counter(v.outcome for v in verdicts)
    invites = sorted(
        v.sip.handset.invite_at
        for v in verdicts
        if v.sip.handset is not None and v.sip.handset.invite_at is not None
    )
    placing_s = invites[-1] - invites[0] if len(invites) > 1 else 0.0
    mismatches = [
        {"index": v.planned.index, "kind": str(v.planned.kind), "call_id": v.sip.call_id,
         "cell": v.planned.cell.name, "problems": v.problems}
        for v in verdicts
        if v.problems
    ]  # fmt: skip
    recordable = [v for v in verdicts if v.planned.kind.value == "approved"]
    charged = [v.db.charge_pence or 0 for v in verdicts]
    return {
        "settings": settings,
        "machine": machine(),
        "started_at": started_at,
        "duration_s": round(ended_at - started_at, 1),
        "attempted": len(verdicts),
        "placed": len(invites),
        "achieved_rate_cps": round((len(invites) - 1) / placing_s, 2) if placing_s else None,
        "connected": outcomes.get("connected", 0),
        "refused": outcomes.get("refused", 0),
        "unanswered": outcomes.get("unanswered", 0),
        "failed": outcomes.get("failed", 0),
        "refused_by_reason": dict(
            Counter(v.db.reason or "?" for v in verdicts if v.outcome == "refused")
        ),
        "unanswered_by_dial_status": dict(
            Counter(v.db.dial_status or "?" for v in verdicts if v.outcome == "unanswered")
        ),
        "failed_by_sip_status": dict(
            Counter(str(v.sip.status or "none") for v in verdicts if v.outcome == "failed")
        ),
        "by_kind": {
            kind: dict(Counter(v.outcome for v in verdicts if v.planned.kind.value == kind))
            for kind in sorted({v.planned.kind.value for v in verdicts})
        },
        "setup_ms": percentiles(setup_ms(v.sip) for v in verdicts),
        "post_pin_ms": percentiles(post_pin_ms(v.planned, v.sip) for v in verdicts),
        "decision_ms": percentiles(v.db.decision_ms for v in verdicts),
        "peak_concurrent": max((p.concurrent for p in progress), default=0),
        "usage": usage(watches),
        "billing": {
            "charged_calls": sum(1 for c in charged if c > 0),
            "charged_pence": sum(charged),
        },
        "recordings": {
            "expected": len(recordable),
            "stored": sum(1 for v in recordable if v.db.recording_ms is not None),
            "store_problems": list(store_problems),
        },
        "settle_wait_s": round(settle_s, 1),
        "mismatches": mismatches,
        "ok": not mismatches and not outcomes.get("failed") and not store_problems,
    }


def summary(f: dict[str, Any]) -> str:
    def pct(name: str) -> str:
        p = f[name]
        if not p["n"]:
            return f"{name:12} -"
        return f"{name:12} p50 {p['p50']} ms  p95 {p['p95']} ms  p99 {p['p99']} ms  (n={p['n']})"

    s = f["settings"]
    lines = [
        f"load: {f['attempted']} calls at {s['rate']} calls/s on {s['cells']} cells, hold "
        f"{s['hold_s']} s ({s['mix']})",
        f"placed {f['placed']} (achieved {f['achieved_rate_cps']} calls/s) in {f['duration_s']} s;"
        f" peak {f['peak_concurrent']} calls at once",
        f"connected {f['connected']}  refused {f['refused']} {f['refused_by_reason'] or ''}  "
        f"unanswered {f['unanswered']} {f['unanswered_by_dial_status'] or ''}  "
        f"failed {f['failed']} {f['failed_by_sip_status'] or ''}",
        pct("setup_ms") + "  (INVITE to the called party's INVITE, PIN entry included)",
        pct("post_pin_ms") + "  (last PIN digit to the called party's INVITE)",
        pct("decision_ms") + "  (the daemon's own decision)",
        f"billing: {f['billing']['charged_calls']} calls charged, "
        f"{f['billing']['charged_pence']}p in all",
        f"recordings: {f['recordings']['stored']} of {f['recordings']['expected']} stored; "
        f"store problems: {len(f['recordings']['store_problems'])}",
    ]
    for name, u in f["usage"].items():
        lines.append(
            f"{name}: CPU mean {u['cpu_pct_mean']}% max {u['cpu_pct_max']}% of a core; "
            f"memory max {u['rss_mb_max']} MB"
        )
    if f["mismatches"]:
        lines.append(f"MISMATCHES: {len(f['mismatches'])} call(s):")
        for m in f["mismatches"][:20]:
            lines.append(
                f"  call {m['index']} ({m['kind']}, {m['cell']}): {'; '.join(m['problems'])}"
            )
        if len(f["mismatches"]) > 20:
            lines.append(f"  ... and {len(f['mismatches']) - 20} more (see the JSON)")
    for line in f["recordings"]["store_problems"][:10]:
        lines.append(f"  store: {line}")
    lines.append("OK: every call as expected" if f["ok"] else "NOT OK")
    return "\n".join(lines)


def write_json(path: Path, f: dict[str, Any], calls: Sequence[Verdict]) -> None:
    data = dict(f)
    data["calls"] = [v.to_dict() for v in calls]
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def chart(
    path: Path,
    verdicts: Sequence[Verdict],
    progress: Sequence[Progress],
    watches: Sequence[ProcWatch],
    started_at: float,
    title: str,
) -> None:
    """A PNG: calls started per second, calls up at once, setup latency and CPU, over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    starts = [
        v.sip.handset.invite_at - started_at
        for v in verdicts
        if v.sip.handset is not None and v.sip.handset.invite_at is not None
    ]
    end = max([p.elapsed_s for p in progress] + starts + [1.0])
    bins = list(range(0, int(end) + 2))
    axes[0].hist(starts, bins=bins, color="tab:blue")
    axes[0].set_ylabel("calls started / s")
    axes[1].plot([p.elapsed_s for p in progress], [p.concurrent for p in progress], "tab:green")
    axes[1].set_ylabel("calls up at once")
    for label, fn, colour in (
        (
            "last PIN digit to called party's INVITE",
            lambda v: post_pin_ms(v.planned, v.sip),
            "tab:red",
        ),
        ("daemon decision", lambda v: v.db.decision_ms, "tab:purple"),
    ):
        pts = [
            (v.sip.handset.invite_at - started_at, fn(v))
            for v in verdicts
            if v.sip.handset is not None
            and v.sip.handset.invite_at is not None
            and fn(v) is not None
        ]
        if pts:
            axes[2].scatter([x for x, _ in pts], [y for _, y in pts], s=6, label=label, c=colour)
    axes[2].set_ylabel("ms")
    axes[2].legend(loc="upper left", fontsize="small")
    for w in watches:
        axes[3].plot(
            [s.at - started_at for s in w.samples], [s.cpu_pct for s in w.samples], label=w.name
        )
    axes[3].set_ylabel("CPU % of a core")
    axes[3].set_xlabel("seconds from the start")
    axes[3].legend(loc="upper left", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
