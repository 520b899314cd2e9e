"""Keep Asterisk's cell endpoints in step with the database, without a manual step.

The operator's CLI and the HTTP API change cells in processes of their own; a trigger bumps a
version counter in the same transaction (migration 0009). The daemon reads that one row every
second (``tick``); when it moved, it reads the enabled handsets, has their PJSIP file rewritten
atomically and, if the file changed, PJSIP reloaded. A failed reload is tried again at the next
tick. Until the reload lands a disabled handset can still pass Asterisk's digest, but every
call it makes is refused by the decision (``handset_disabled``): the sync only closes the door
earlier, it is not what keeps it shut.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from callcontrol.domain.model import CellEndpoint

log = logging.getLogger("callcontrol.cells_sync")


class EndpointSource(Protocol):
    async def version(self) -> int: ...

    async def endpoints(self) -> tuple[int, list[CellEndpoint]]: ...


# Writes the endpoints (rendered) where Asterisk reads them; True when the file changed.
# ValueError when an endpoint cannot be written safely (the file is then left as it was).
WriteEndpoints = Callable[[Sequence[CellEndpoint]], bool]
Reload = Callable[[], Awaitable[None]]


class CellsSync:
    def __init__(self, source: EndpointSource, write: WriteEndpoints, reload: Reload) -> None:
        self.source = source
        self.write = write
        self.reload = reload
        self.synced: int | None = None  # the version Asterisk has loaded; None: not yet known
        self._reload_pending = True  # at start: whatever an earlier daemon left unreloaded

    async def tick(self) -> bool:
        """Sync if the cells changed since the last sync (or a reload is still owed). True
        when Asterisk was asked to reload. Raises what the ports raise (tried again later)."""
        if not self._reload_pending and await self.source.version() == self.synced:
            return False
        version, endpoints = await self.source.endpoints()
        if version != self.synced:
            try:
                changed = self.write(endpoints)
            except ValueError as e:
                # A row that cannot be written safely: keep the file Asterisk has, and wait for
                # the next change rather than repeat this every second.
                log.error("cells sync: not written (version %d): %s", version, e)
                self.synced = version
                return False
            self._reload_pending = self._reload_pending or changed
        if self._reload_pending:
            await self.reload()
            self._reload_pending = False
            log.info("cells sync: %d enabled handset(s) loaded into Asterisk", len(endpoints))
        self.synced = version
        return True


# How often the daemon reads the cells' version (one row): a change reaches Asterisk within
# about this, plus the reload.
POLL_S = 1.0


async def keep_syncing(sync: CellsSync, poll_s: float = POLL_S) -> None:
    """Tick every ``poll_s`` until cancelled. A failure (database or Asterisk away) is logged
    once, until a sync succeeds again, and tried again at the next tick."""
    failing = ""
    while True:
        try:
            await sync.tick()
            if failing:
                log.info("cells sync: working again")
            failing = ""
        except asyncio.CancelledError:
            raise
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
            if why != failing:
                log.warning("cells sync failed (%s); trying again every %g s", why, poll_s)
            failing = why
        await asyncio.sleep(poll_s)
