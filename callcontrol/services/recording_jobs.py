"""Which recordings are ready to ingest: the settled calls whose spool file is complete.

MixMonitor streams a recorded call to SPOOL/UNIQUEID.raw while it runs, so nothing is lost if
anything dies; the recording worker (services/recording_worker.py) brings those files into the
store once the call is settled, and notices a call that should have a recording but has none.
This module finds them: ``RecordingFinder`` asks the database (the ``RecordingQueue`` port) for
the calls settled since it last looked, and for what an earlier run left (``sweep``: calls
settled with neither recording nor missing-recording row, and spool files of settled calls);
``SpoolWatch`` then says which of them are ready, from their spool files alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Protocol

log = logging.getLogger("callcontrol.recordings")

# MixMonitor closes its file as the call's last channel goes: give it this long after the end.
GRACE_S = 1.5
# Under load MixMonitor's thread writes late: at 10 calls a second, files of calls just ended
# were still empty 1.5 s after the end. A file must have stopped growing for STEADY_S; one that
# is missing or empty SPOOL_WAIT_S after the call was settled counts as missing.
STEADY_S = 0.5
SPOOL_WAIT_S = 20.0
# Calls settled this long before the latest one seen are looked at again at every poll: a
# settlement's transaction may commit a little after the time it wrote.
OVERLAP = timedelta(seconds=60)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SettledCall:
    """A settled call that has neither a recording nor a missing-recording row yet."""

    call_id: int
    uniqueid: str
    privileged: bool
    accepted: bool
    settled_at: datetime


class Claim(Enum):
    CLAIMED = "claimed"  # ours until the lease ends (renew it while working)
    BUSY = "busy"  # another worker holds it: try again once its lease may have run out
    DONE = "done"  # dealt with already


class RecordingQueue(Protocol):
    """The database's side of the recordings waiting (adapters/db/recording_queue.py)."""

    async def settled_since(self, since: datetime) -> Sequence[SettledCall]:
        """Calls settled at or after ``since``, not dealt with yet, oldest first."""
        ...

    async def latest_settled(self) -> datetime | None:
        """When the latest call was settled (None: no call yet)."""
        ...

    async def left_over(self) -> Sequence[SettledCall]:
        """Every accepted settled call with neither recording nor missing-recording row."""
        ...

    async def settled_call(self, uniqueid: str) -> SettledCall | None | bool:
        """The call of a spool file: the call if settled and no worker finished it; True if it
        is not settled yet or finished; None if there is no such call."""
        ...

    async def claim(self, call_id: int, worker: str, now: datetime, lease_s: float) -> Claim: ...

    async def renew(self, call_id: int, worker: str, now: datetime, lease_s: float) -> bool: ...

    async def finish(self, call_id: int, worker: str, now: datetime) -> None: ...

    async def give_back(self, call_id: int, worker: str, retry_at: datetime) -> None:
        """Release a claim after a failure: anyone may take it again from ``retry_at``."""
        ...


def spool_file(spool: Path, uniqueid: str) -> Path:
    return spool / f"{uniqueid}.raw"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class _Waiting:
    call: SettledCall
    seen_at: float  # monotonic
    size: int
    size_since: float  # when the size was last seen to change
    not_before: float  # a failed or busy one waits until then


class SpoolWatch:
    """The settled calls waiting for their recording to be ingested, and which are ready.

    Times are the worker's monotonic clock (never the database's times: a worker may run on
    another machine). A call is ready once GRACE_S passed since it was first seen and its file
    holds audio that has not grown for STEADY_S; or, with no audio, once SPOOL_WAIT_S passed
    (ingesting it then records the recording as missing). A call that was never accepted, or a
    privileged one, with no file is dropped: nothing was recorded, nothing is missing."""

    def __init__(
        self,
        spool: Path,
        size: Callable[[Path], int] = _size,
        grace_s: float = GRACE_S,
        steady_s: float = STEADY_S,
        wait_s: float = SPOOL_WAIT_S,
    ) -> None:
        self.spool, self.size = spool, size
        self.grace_s, self.steady_s, self.wait_s = grace_s, steady_s, wait_s
        self._waiting: dict[int, _Waiting] = {}
        # Calls dealt with (or dropped) lately, which a poll's OVERLAP may bring back: when
        # each was settled, to forget them once they are out of the overlap for good.
        self._gone: dict[int, datetime] = {}

    def add(self, calls: Iterable[SettledCall], now: float) -> None:
        for call in calls:
            if call.call_id not in self._waiting and call.call_id not in self._gone:
                size = self.size(spool_file(self.spool, call.uniqueid))
                self._waiting[call.call_id] = _Waiting(call, now, size, now, now)

    def forget_before(self, settled_at: datetime) -> None:
        """Forget the calls dealt with that were settled before ``settled_at``."""
        self._gone = {c: at for c, at in self._gone.items() if at >= settled_at}

    def __contains__(self, call_id: int) -> bool:
        return call_id in self._waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def backlog(self) -> int:
        """Recordings waiting for compression: the calls whose spool file holds audio."""
        return sum(1 for w in self._waiting.values() if w.size > 0)

    def drop(self, call_id: int) -> None:
        """Dealt with (or nothing to do): not waited for again."""
        w = self._waiting.pop(call_id, None)
        if w is not None:
            self._gone[call_id] = w.call.settled_at

    def later(self, call_id: int, not_before: float) -> None:
        if call_id in self._waiting:
            self._waiting[call_id].not_before = not_before

    def ready(self, now: float) -> list[SettledCall]:
        """Look at every waiting call's file; those ready to ingest, the earliest settled first."""
        due = []
        for call_id, w in list(self._waiting.items()):
            size = self.size(spool_file(self.spool, w.call.uniqueid))
            if size != w.size:
                w.size, w.size_since = size, now
            if now < w.not_before or now - w.seen_at < self.grace_s:
                continue
            if size > 0:
                if now - w.size_since >= self.steady_s:
                    due.append(w.call)
            elif w.call.privileged or not w.call.accepted:
                self.drop(call_id)  # nothing recorded, nothing missing
            elif now - w.seen_at >= self.wait_s:
                due.append(w.call)  # ingesting it records it missing
        return sorted(due, key=lambda c: (c.settled_at, c.call_id))


class RecordingFinder:
    """Finds the recordings to ingest: what an earlier run left (``sweep``), then the calls
    settled since the last look (``poll``), into a SpoolWatch. The one place that knows which
    settled calls need their recording ingested."""

    def __init__(self, queue: RecordingQueue, watch: SpoolWatch) -> None:
        self.queue, self.watch = queue, watch
        self._latest: datetime | None = None

    def _seen(self, calls: Sequence[SettledCall], now: float) -> None:
        self.watch.add(calls, now)
        for call in calls:
            if self._latest is None or call.settled_at > self._latest:
                self._latest = call.settled_at

    async def sweep(self, now: float) -> int:
        """Run at the start (and now and then): what a crash or a stop left, accepted settled
        calls with no recording and no missing-recording row, and the spool's files of settled
        calls. Returns how many it found."""
        if self._latest is None:  # polls start from here: nothing settled after is missed
            self._latest = await self.queue.latest_settled()
        found = list(await self.queue.left_over())
        known = {c.call_id for c in found}
        for path in sorted(self.watch.spool.glob("*.raw")):
            call = await self.queue.settled_call(path.stem)
            if call is None:
                log.error("recording spool file %s belongs to no call: left for an operator", path)
            elif isinstance(call, SettledCall) and call.call_id not in known:
                found.append(call)
        self._seen(found, now)
        if found:
            log.info("recordings: %d left by an earlier run to deal with", len(found))
        return len(found)

    async def poll(self, now: float) -> None:
        """Add the calls settled since the last look (and a little before: OVERLAP)."""
        if self._latest is None:
            self._latest = await self.queue.latest_settled()
        since = EPOCH if self._latest is None else self._latest - OVERLAP
        self._seen(await self.queue.settled_since(since), now)
        self.watch.forget_before(since - OVERLAP)
