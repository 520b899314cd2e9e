"""When recordings are ingested: after each settled call, and whatever a crash left behind.

MixMonitor streams a recorded call to SPOOL/UNIQUEID.raw while it runs, so nothing is lost if
the daemon dies; this module brings those files into recording storage once the call is over,
and notices a call that should have a recording but has none.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import MissingRecording, Recording
from callcontrol.services import recordings
from callcontrol.services.settle import OpenCall, Settlement

log = logging.getLogger("callcontrol.recordings")

# MixMonitor closes its file as the call's last channel goes: give it this long after the end.
GRACE_S = 1.5
# Under load MixMonitor's thread writes late: at 10 calls a second, files of calls just ended
# were still empty 1.5 s after the end. A file that is missing, empty or still growing is
# looked at again every STEADY_S, for up to SPOOL_WAIT_S, before it counts as missing.
STEADY_S = 0.5
SPOOL_WAIT_S = 20.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


async def wait_until_written(
    path: Path, steady_s: float = STEADY_S, limit_s: float = SPOOL_WAIT_S
) -> bool:
    """Wait until ``path`` holds audio that stopped growing (True), or ``limit_s`` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    last = _size(path)
    while True:
        await asyncio.sleep(steady_s)
        size = _size(path)
        if size > 0 and size == last:
            return True
        if loop.time() >= deadline:
            return False
        last = size


class RecordingJobs:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        spool: Path,
        store_dir: Path,
        bitrate: int,
    ) -> None:
        self.sessions = sessions
        self.spool = spool
        self.store_dir = store_dir
        self.bitrate = bitrate
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0  # ingests that raised, since the start (a metric)

    @property
    def in_progress(self) -> int:
        """Recordings waiting for their file or being ingested now."""
        return len(self._tasks)

    def spool_file(self, uniqueid: str) -> Path:
        return self.spool / f"{uniqueid}.raw"

    def after_settlement(self, call: OpenCall, settlement: Settlement) -> None:
        """A settled call: ingest its recording (if it was accepted) in the background."""
        if not settlement.accepted and not self.spool_file(call.uniqueid).exists():
            return  # never bridged: nothing was recorded, nothing is missing
        task = asyncio.create_task(self._ingest_later(call.call_id, call.uniqueid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ingest_later(self, call_id: int, uniqueid: str) -> None:
        await asyncio.sleep(GRACE_S)
        await wait_until_written(self.spool_file(uniqueid))
        await self.ingest(call_id, uniqueid)

    async def ingest(self, call_id: int, uniqueid: str) -> None:
        try:
            await recordings.ingest(
                self.sessions, self.store_dir, call_id, self.spool_file(uniqueid), self.bitrate
            )
        except Exception:
            self.failures += 1
            log.exception(
                "ingesting the recording of call %d failed; it stays in the spool "
                "and is tried again at the next start",
                call_id,
            )

    async def catch_up(self) -> int:
        """Ingest what the spool still holds for settled calls (a crash, a restart), and mark
        missing every settled, accepted, recordable call with neither file nor recording."""
        done = 0
        async with self.sessions() as s:
            settled = (
                await s.execute(
                    select(m.Call.id, m.Call.uniqueid, m.Call.privileged)
                    .outerjoin(Recording, Recording.call_id == m.Call.id)
                    .outerjoin(MissingRecording, MissingRecording.call_id == m.Call.id)
                    .where(
                        m.Call.settled_at.is_not(None),
                        m.Call.accepted.is_(True),
                        Recording.id.is_(None),
                        MissingRecording.id.is_(None),
                    )
                )
            ).all()
        for call_id, uniqueid, privileged in settled:
            path = self.spool_file(uniqueid)
            if path.exists() or not privileged:
                # recordings.ingest stores it, or deletes a privileged call's audio, or
                # records that a recordable call has none.
                await self.ingest(call_id, uniqueid)
                done += 1
        for path in sorted(self.spool.glob("*.raw")):
            async with self.sessions() as s:
                row = (
                    await s.execute(
                        select(m.Call.id, m.Call.settled_at).where(m.Call.uniqueid == path.stem)
                    )
                ).first()
            if row is None:
                log.error("recording spool file %s belongs to no call: left for an operator", path)
            elif row.settled_at is not None:
                await self.ingest(row.id, path.stem)
                done += 1
        if done:
            log.info("recordings: %d left by an earlier run dealt with", done)
        return done

    async def drain(self) -> None:
        """Let running ingests finish (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
