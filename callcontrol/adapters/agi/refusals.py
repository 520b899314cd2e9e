"""Refused FastAGI connections and requests, logged so that an operator can read them and a
flood cannot fill the disk.

One warning line per refusal, naming the peer and why, up to ``burst`` lines per ``window_s``
for each kind of refusal; past that the refusals are only counted, and the next line after the
window says how many were left out. Kinds are a small fixed set (the server's), so the log
grows by at most ``burst`` lines per kind per window however hard someone tries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


class RefusalLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 20,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def refused(self, kind: str, message: str, *args: object) -> None:
        """Log one refusal of ``kind`` (e.g. "peer not allowed") unless its window is full."""
        now = self._clock()
        window = self._windows.get(kind)
        if window is None or now - window.started >= self._window_s:
            if window is not None and window.suppressed:
                self._summary(kind, window, now)
            window = self._windows[kind] = _Window(started=now)
        if window.logged >= self._burst:
            window.suppressed += 1
            return
        window.logged += 1
        self._log.warning(message, *args)

    def flush(self) -> None:
        """Say how many refusals were left out, for every kind with some (at stop)."""
        now = self._clock()
        for kind, window in self._windows.items():
            if window.suppressed:
                self._summary(kind, window, now)
                window.suppressed = 0

    def _summary(self, kind: str, window: _Window, now: float) -> None:
        self._log.warning(
            "FastAGI: %d more refusals (%s) not logged in the last %.0fs",
            window.suppressed,
            kind,
            now - window.started,
        )
