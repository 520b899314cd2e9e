"""The recording worker's status file: its figures as one JSON document, rewritten as they
change (and every STALE_S at least), read by the daemon for /metrics and the console, and by
the benchmark. The format is WorkerFigures.as_json (services/recording_worker.py; documented in
docs/recordings.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from callcontrol import private_files
from callcontrol.services.recording_worker import WorkerFigures

# Rewritten at least this often (seconds) while nothing changes, so that updated_at shows the
# worker is alive.
STALE_S = 10.0
# These change at every poll without saying anything new.
_RESTLESS = ("updated_at", "process_cpu_s")


class StatusFile:
    """Writes a worker's figures to ``path`` (atomically: readers never see half a file)."""

    def __init__(self, path: Path, clock: Any = time.monotonic) -> None:
        self.path, self.clock = path, clock
        self._last: dict[str, Any] | None = None
        self._written_at = 0.0

    def __call__(self, figures: WorkerFigures) -> None:
        data = figures.as_json()
        steady = {k: v for k, v in data.items() if k not in _RESTLESS}
        if steady == self._last and self.clock() - self._written_at < STALE_S:
            return
        private_files.write_file(self.path, json.dumps(data, indent=1) + "\n")
        self._last, self._written_at = steady, self.clock()


def read_status(path: Path) -> dict[str, Any] | None:
    """The figures a worker last wrote to ``path``; None if there are none (yet)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class WorkerStatus:
    """The worker's figures as the daemon shows them (/metrics, the console's alerts): read
    from its status file at most once every ``max_age_s``."""

    def __init__(self, path: Path, max_age_s: float = 1.0) -> None:
        self.path, self.max_age_s = path, max_age_s
        self._data: dict[str, Any] = {}
        self._read_at = float("-inf")

    def _figures(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._read_at >= self.max_age_s:
            self._data, self._read_at = read_status(self.path) or {}, now
        return self._data

    @property
    def in_progress(self) -> int:
        """Recordings waiting for compression (the worker's backlog)."""
        return int(self._figures().get("backlog") or 0)

    @property
    def failures(self) -> int:
        """Ingests that failed since the worker started."""
        return int(self._figures().get("failures") or 0)
