"""The recordings worker's totals as the benchmark reads them, and the figures made of them:
CPU seconds per recorded minute, the backlog's peak, the time it took to drain.

The worker (``callcontrol recordings worker``) writes its running totals to a JSON file. Its
name and field names are looked up from the candidates below (``TOTALS_FILES`` under the
daemon's base_dir, ``FIELDS``): adjust them here to the worker's own when they settle. A
daemon without the worker has no such file, and its figures are then "not reported by this
daemon" (``NOT_REPORTED``), never invented.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

NOT_REPORTED = "not reported by this daemon"
TOTALS_FILES = (
    "recordings-worker.json",
    "var/recordings-worker.json",
    "run/recordings-worker.json",
)
# Our name: the names the worker may write it under, first found wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "done": ("recordings_done", "done", "recordings"),
    "recorded_s": ("recorded_seconds", "recorded_s", "audio_seconds"),
    "cpu_s": ("cpu_seconds", "cpu_s"),
    "backlog": ("backlog", "backlog_now", "waiting"),
    "backlog_peak": ("backlog_peak", "peak_backlog", "backlog_max"),
    "last_drained": ("last_drained", "last_drained_at", "drained_at"),
}


@dataclass(frozen=True)
class WorkerTotals:
    done: int  # recordings compressed and stored since the worker started
    recorded_s: float  # seconds of audio in them
    cpu_s: float  # CPU seconds the worker (and its encoders) spent
    backlog: int  # recordings waiting now
    backlog_peak: int  # the most that ever waited
    last_drained: float | None  # when the backlog last became empty (Unix time), if ever


def _when(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def parse_totals(data: Mapping[str, Any]) -> WorkerTotals | None:
    """The totals in ``data`` (the worker's JSON); None when a field is missing or unreadable."""
    found: dict[str, Any] = {}
    for ours, names in FIELDS.items():
        found[ours] = next((data[n] for n in names if n in data), None)
    try:
        return WorkerTotals(
            done=int(found["done"]),
            recorded_s=float(found["recorded_s"]),
            cpu_s=float(found["cpu_s"]),
            backlog=int(found["backlog"]),
            backlog_peak=int(found["backlog_peak"]),
            last_drained=_when(found["last_drained"]),
        )
    except (TypeError, ValueError):
        return None


def read_totals(base_dir: Path) -> WorkerTotals | None:
    """The worker's totals, from the first of TOTALS_FILES under ``base_dir``; None when there
    is none (no worker: a daemon that compresses recordings itself) or it cannot be read."""
    for name in TOTALS_FILES:
        path = base_dir / name
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return parse_totals(data)
    return None


def recordings_figures(
    before: WorkerTotals | None, after: WorkerTotals | None, calls_ended_at: float
) -> dict[str, Any]:
    """The figures of a run from the totals before and after it (after: once drained, or given
    up waiting). ``calls_ended_at``: when the run's last call ended (Unix time). A figure that
    cannot be had is NOT_REPORTED."""
    if after is None:
        return {k: NOT_REPORTED for k in ("cpu_s_per_recorded_minute", "backlog_peak", "drain_s")}
    done = after.done - (before.done if before else 0)
    recorded = after.recorded_s - (before.recorded_s if before else 0.0)
    cpu = after.cpu_s - (before.cpu_s if before else 0.0)
    drained = after.last_drained if after.backlog == 0 else None
    return {
        "recordings_done": done,
        "recorded_minutes": round(recorded / 60, 1),
        "cpu_s": round(cpu, 1),
        "cpu_s_per_recorded_minute": round(cpu / (recorded / 60), 3) if recorded > 0 else None,
        "backlog_peak": after.backlog_peak,
        "backlog_left": after.backlog,
        "drain_s": round(max(0.0, drained - calls_ended_at), 1) if drained is not None else None,
    }
