"""The recording worker: compresses and stores the recordings of settled calls, one at a time.

It runs as a process of its own at idle priority (`callcontrol recordings worker`), spawned by
the daemon or run by the site (on this machine or another, against the same database, spool
and store), so that compression never takes the decisions' CPU. Several may run at once: each
recording is claimed in the database first (RecordingQueue.claim), with a lease renewed while
it works; a worker that dies loses its claims when their leases run out, and another takes them
over. Storing is idempotent besides (services/recordings.py ``ingest``): nothing is lost and
nothing is stored twice.

It keeps figures (WorkerFigures) for the benchmark and the operator: the CPU it spent per
recorded minute, and the backlog of recordings waiting for compression, its peak and when it
last drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from callcontrol.services.recording_jobs import (
    Claim,
    RecordingFinder,
    RecordingQueue,
    SettledCall,
)

log = logging.getLogger("callcontrol.recordings")

# Seconds between two looks at the database for calls settled since.
POLL_S = 1.0
# A claim holds this long unless renewed (every third of it while working): a worker that dies
# holds its recording up to this long before another takes it over.
LEASE_S = 60.0
# An ingest that failed (database away, disk full) is tried again this long after, by anyone.
RETRY_S = 60.0
# While the database is away, the worker looks again at most this far apart.
FAILING_MAX_S = 30.0
# The sweep for what earlier runs left (a crash, a stop) runs at the start and this often.
SWEEP_S = 3600.0

# Stores a settled call's recording; returns the seconds of audio stored, or None when nothing
# was stored by this call (recorded missing, a privileged call, stored already).
Ingest = Callable[[SettledCall], Awaitable[float | None]]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="milliseconds")


@dataclass
class WorkerFigures:
    """What a worker did since it started (``as_json``: the status file's format)."""

    worker: str
    started_at: datetime
    updated_at: datetime
    recordings: int = 0  # stored by this worker
    recorded_s: float = 0.0  # their audio, seconds
    cpu_s: float = 0.0  # CPU spent storing them: the worker's own and its children's (ffmpeg)
    others: int = 0  # dealt with, nothing stored: missing, privileged, stored already
    others_cpu_s: float = 0.0
    failures: int = 0  # ingests that raised (tried again later)
    backlog: int = 0  # recordings waiting for compression now (their spool file holds audio)
    backlog_peak: int = 0
    backlog_peak_at: datetime | None = None
    backlog_since: datetime | None = None  # when the current backlog began (None: empty)
    drained_at: datetime | None = None  # when the backlog last fell to 0
    last_drain_s: float | None = None  # from when that backlog began to when it drained
    process_cpu_s: float = 0.0  # all the CPU the worker used, polling included
    extra: dict[str, Any] = field(default_factory=dict)

    def note_backlog(self, count: int, now: datetime) -> None:
        if count > 0 and self.backlog == 0:
            self.backlog_since = now
        if count == 0 and self.backlog > 0:
            self.drained_at = now
            if self.backlog_since is not None:
                self.last_drain_s = (now - self.backlog_since).total_seconds()
            self.backlog_since = None
        if count > self.backlog_peak:
            self.backlog_peak, self.backlog_peak_at = count, now
        self.backlog, self.updated_at = count, now

    def as_json(self) -> dict[str, Any]:
        minutes = self.recorded_s / 60
        return {
            "worker": self.worker,
            "started_at": _iso(self.started_at),
            "updated_at": _iso(self.updated_at),
            "recordings": self.recordings,
            "recorded_s": round(self.recorded_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "cpu_s_per_recorded_min": round(self.cpu_s / minutes, 4) if minutes else None,
            "others": self.others,
            "others_cpu_s": round(self.others_cpu_s, 3),
            "failures": self.failures,
            "backlog": self.backlog,
            "backlog_peak": self.backlog_peak,
            "backlog_peak_at": _iso(self.backlog_peak_at),
            "backlog_since": _iso(self.backlog_since),
            "drained_at": _iso(self.drained_at),
            "last_drain_s": None if self.last_drain_s is None else round(self.last_drain_s, 3),
            "process_cpu_s": round(self.process_cpu_s, 3),
            **self.extra,
        }


class RecordingWorker:
    def __init__(
        self,
        finder: RecordingFinder,
        queue: RecordingQueue,
        ingest: Ingest,
        name: str,
        *,
        clock: Callable[[], datetime],
        cpu: Callable[[], float],
        publish: Callable[[WorkerFigures], None] = lambda _: None,
        monotonic: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
        lease_s: float = LEASE_S,
        retry_s: float = RETRY_S,
        sweep_s: float = SWEEP_S,
    ) -> None:
        self.finder, self.watch, self.queue, self.ingest = finder, finder.watch, queue, ingest
        self.name, self.clock, self.cpu, self.publish = name, clock, cpu, publish
        self.monotonic = monotonic
        self.poll_s, self.lease_s, self.retry_s, self.sweep_s = poll_s, lease_s, retry_s, sweep_s
        now = clock()
        self.figures = WorkerFigures(name, now, now)
        self._cpu_at_start = cpu()
        self._next_sweep = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; a recording being stored then is finished first."""
        log.info("recording worker %s started", self.name)
        failing = 0  # looks that failed in a row (the database away): wait longer, log less
        while not stop.is_set():
            try:
                await self.step(stop)
                failing = 0
            except Exception:
                failing += 1
                if failing == 1 or failing % 60 == 0:
                    log.exception("the recording worker could not look for work; will try again")
            pause = min(self.poll_s * 2 ** min(failing, 10), FAILING_MAX_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(self.poll_s, pause))
        log.info("recording worker %s stopped", self.name)

    async def step(self, stop: asyncio.Event | None = None) -> None:
        """One look for work, and the work found (one recording at a time)."""
        if self.monotonic() >= self._next_sweep:
            await self.finder.sweep(self.monotonic())
            self._next_sweep = self.monotonic() + self.sweep_s
        await self.finder.poll(self.monotonic())
        self.figures.note_backlog(self.watch.backlog(), self.clock())
        for call in self.watch.ready(self.monotonic()):
            if stop is not None and stop.is_set():
                break
            await self.one(call)
            self.figures.note_backlog(self.watch.backlog(), self.clock())
            self._publish()
        self.figures.note_backlog(self.watch.backlog(), self.clock())
        self._publish()

    async def one(self, call: SettledCall) -> None:
        claim = await self.queue.claim(call.call_id, self.name, self.clock(), self.lease_s)
        if claim is Claim.DONE:
            self.watch.drop(call.call_id)
            return
        if claim is Claim.BUSY:  # another worker has it; look again once its lease may be out
            self.watch.later(call.call_id, self.monotonic() + self.lease_s)
            return
        before = self.cpu()
        keeper = asyncio.create_task(self._keep_lease(call.call_id))
        try:
            recorded_s = await self.ingest(call)
        except Exception:
            self.figures.failures += 1
            log.exception(
                "ingesting the recording of call %d failed; it stays in the spool and is tried "
                "again in %.0f s",
                call.call_id,
                self.retry_s,
            )
            retry_at = self.clock() + timedelta(seconds=self.retry_s)
            await self.queue.give_back(call.call_id, self.name, retry_at)
            self.watch.later(call.call_id, self.monotonic() + self.retry_s)
            return
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        spent = self.cpu() - before
        await self.queue.finish(call.call_id, self.name, self.clock())
        self.watch.drop(call.call_id)
        if recorded_s is None:
            self.figures.others += 1
            self.figures.others_cpu_s += spent
            return
        self.figures.recordings += 1
        self.figures.recorded_s += recorded_s
        self.figures.cpu_s += spent
        per_minute = spent / (recorded_s / 60) if recorded_s > 0 else 0.0
        log.info(
            "call %d: %.1f s of audio compressed and stored with %.2f s of CPU "
            "(%.2f s a recorded minute)",
            call.call_id,
            recorded_s,
            spent,
            per_minute,
        )

    async def _keep_lease(self, call_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                held = await self.queue.renew(call_id, self.name, self.clock(), self.lease_s)
            except Exception:
                log.warning("could not renew the claim on call %d's recording", call_id)
                continue
            if not held:
                log.warning("the claim on call %d's recording was lost to another worker", call_id)

    def _publish(self) -> None:
        self.figures.process_cpu_s = self.cpu() - self._cpu_at_start
        try:
            self.publish(self.figures)
        except Exception:
            log.exception("could not write the recording worker's figures")
