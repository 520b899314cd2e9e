"""How the simulator and the benchmark measure: one percentile and one reader of CPU time.

- ``percentile(sorted_values, p)``: the nearest-rank percentile (the smallest value with at least
  p% of the values at or below it); 0.0 for no values.
- ``process_stat(pid)``: a process's parent, CPU seconds (its own and those of the children it
  has waited for: Asterisk's per-call AGI scripts, the daemon's ffmpeg) and resident memory, from
  /proc/PID/stat and /proc/PID/status; None if there is no such process.
- ``machine_busy_s()``: CPU seconds the whole machine has been busy since boot (/proc/stat).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile of values sorted ascending (0.0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(len(sorted_values) * p / 100))
    return float(sorted_values[rank - 1])


class ProcStat(NamedTuple):
    ppid: int
    cpu_s: float  # utime + stime + cutime + cstime
    rss_kb: int  # 0 when not asked for or not known


def process_stat(pid: int | str, memory: bool = False) -> ProcStat | None:
    """The process's parent, CPU seconds and (with ``memory``) resident set; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # from field 3 (state) on
    try:
        ppid, ticks = int(fields[1]), sum(int(x) for x in fields[11:15])
    except (IndexError, ValueError):
        return None
    rss_kb = 0
    if memory:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                rss_kb = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            rss_kb = 0
    return ProcStat(ppid, ticks / CLOCK_TICKS, rss_kb)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (0.0 without /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / CLOCK_TICKS
