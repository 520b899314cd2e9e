"""Is the daemon ready to decide calls? FastAGI listening, AMI logged in, the database current.

The same answer serves systemd (``READY=1`` is sent once, the first time all three hold; the
``STATUS=`` line follows every change afterwards) and ``GET /ready`` on the HTTP server (200 or
503). The database is asked at most every ``DB_CHECK_S`` seconds (one short query for the
schema's revision), however often /ready is polled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callcontrol.sd_notify import Notifier

log = logging.getLogger("callcontrol.daemon")

# How often readiness is looked at while waiting for it, and afterwards for the status line.
POLL_S = 0.25
STATUS_POLL_S = 5.0
# The database's answer is reused for this long; a check gives up after DB_TIMEOUT_S.
DB_CHECK_S = 2.0
DB_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class ReadyState:
    agi: bool
    ami: bool
    db: bool
    db_detail: str = ""

    @property
    def ready(self) -> bool:
        return self.agi and self.ami and self.db

    def describe(self, agi_where: str, ami_where: str) -> str:
        """One line for `systemctl status` and the log."""
        if self.ready:
            return (
                f"deciding calls: FastAGI on {agi_where}, AMI {ami_where} logged in, "
                "database current"
            )
        missing = []
        if not self.agi:
            missing.append("FastAGI not listening")
        if not self.ami:
            missing.append(f"AMI {ami_where} not logged in")
        if not self.db:
            missing.append(f"database not ready ({self.db_detail or 'unreachable'})")
        return "waiting: " + "; ".join(missing)


class Readiness:
    """Looks at the three parts; ``db_check`` returns "" when the database is reachable and at
    the latest schema, else why not (it may raise: that is 'unreachable')."""

    def __init__(
        self,
        agi_listening: Callable[[], bool],
        ami_connected: Callable[[], bool],
        db_check: Callable[[], Awaitable[str]],
        clock: Callable[[], float] = time.monotonic,
        db_check_s: float = DB_CHECK_S,
    ) -> None:
        self._agi = agi_listening
        self._ami = ami_connected
        self._db_check = db_check
        self._clock = clock
        self._db_check_s = db_check_s
        self._db: tuple[float, str] | None = None  # (when, "" or why not)
        self._lock = asyncio.Lock()
        self.became_ready = asyncio.Event()

    async def _db_detail(self) -> str:
        async with self._lock:  # one query at a time, whoever asks
            now = self._clock()
            if self._db is not None and now - self._db[0] < self._db_check_s:
                return self._db[1]
            try:
                async with asyncio.timeout(DB_TIMEOUT_S):
                    detail = await self._db_check()
            except TimeoutError:
                detail = f"no answer within {DB_TIMEOUT_S:g} s"
            except Exception as e:
                detail = " ".join(str(e).split()) or type(e).__name__
            self._db = (self._clock(), detail)
            return detail

    async def state(self) -> ReadyState:
        detail = await self._db_detail()
        return ReadyState(agi=self._agi(), ami=self._ami(), db=not detail, db_detail=detail)

    async def notify_systemd(
        self, notifier: Notifier, agi_where: str, ami_where: str, stop: asyncio.Event
    ) -> None:
        """Until ``stop``: READY=1 once all is up, and STATUS= on every change (logged too)."""
        shown = ""
        while not stop.is_set():
            st = await self.state()
            line = st.describe(agi_where, ami_where)
            if st.ready and not self.became_ready.is_set():
                self.became_ready.set()
                notifier.ready(line)
                log.info("ready: %s", line)
            elif line != shown:
                notifier.status(line)
                if shown:
                    log.info("status: %s", line)
            shown = line
            wait = STATUS_POLL_S if self.became_ready.is_set() else POLL_S
            try:
                async with asyncio.timeout(wait):
                    await stop.wait()
            except TimeoutError:
                pass
