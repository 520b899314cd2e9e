"""The live calls as they change, for pages that update by themselves (the console's
/console/live, over server-sent events).

One snapshot (Supervisor.live_calls: the calls not ended whose channel Asterisk has) is shared
by every page: taken at most once a ``interval`` seconds whoever asks, and at once after a
``poke`` (the AMI tracker's Hangup, so a call that ends leaves the pages within moments). A page
is sent a snapshot only when the calls it lists change (one appears when it is bridged, that is
accepted by the called party; one goes when its channel hangs up), and nothing queues up for a
slow page: it gets the latest snapshot when it next asks. At most ``max_watchers`` pages watch
at once, ``max_per_person`` of one person's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass

from callcontrol.services.supervise import AsteriskUnavailable, LiveView, Supervisor

log = logging.getLogger("callcontrol.live")

INTERVAL_S = 1.0
MAX_WATCHERS = 32
MAX_PER_PERSON = 4


def bridged(view: LiveView) -> LiveView:
    """Only the calls the called party has accepted: bridged, the ones staff watch."""
    return LiveView([c for c in view.calls if c.answered_at is not None], view.asterisk_connected)


def signature(view: LiveView) -> Hashable:
    return (view.asterisk_connected, tuple(c.call.call_id for c in view.calls))


@dataclass
class _Snapshot:
    view: LiveView
    at: float


class LiveFeed:
    def __init__(
        self,
        supervisor: Supervisor,
        *,
        interval: float = INTERVAL_S,
        max_watchers: int = MAX_WATCHERS,
        max_per_person: int = MAX_PER_PERSON,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.supervisor = supervisor
        self.interval = interval
        self.max_watchers, self.max_per_person = max_watchers, max_per_person
        self.clock = clock
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()
        self._poked = asyncio.Event()
        self._watchers: dict[str, int] = {}

    def poke(self) -> None:
        """Something changed (a channel hung up): take a new snapshot at once."""
        self._poked.set()

    async def current(self) -> LiveView:
        """The bridged live calls, no older than ``interval`` (or a poke)."""
        async with self._lock:
            snap = self._snapshot
            if snap is None or self._poked.is_set() or self.clock() - snap.at >= self.interval:
                self._poked.clear()
                view = bridged(await self.supervisor.live_calls())
                self._snapshot = snap = _Snapshot(view, self.clock())
            return snap.view

    @contextlib.asynccontextmanager
    async def watching(self, person: str) -> AsyncIterator[AsyncIterator[LiveView]]:
        """One page's feed: the snapshot now, then each that differs. Refused (Unavailable)
        beyond the caps."""
        if sum(self._watchers.values()) >= self.max_watchers:
            raise AsteriskUnavailable(
                f"{self.max_watchers} pages are watching live calls already; try again later"
            )
        if self._watchers.get(person, 0) >= self.max_per_person:
            raise AsteriskUnavailable(
                f"you have {self.max_per_person} live calls pages open already: close one"
            )
        self._watchers[person] = self._watchers.get(person, 0) + 1
        try:
            yield self._changes()
        finally:
            self._watchers[person] -= 1
            if not self._watchers[person]:
                del self._watchers[person]

    async def _changes(self) -> AsyncIterator[LiveView]:
        last: Hashable = None
        while True:
            view = await self.current()
            if signature(view) != last:
                last = signature(view)
                yield view
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._poked.wait()
