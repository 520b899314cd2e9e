"""The console's services as the daemon builds them (app.py calls ``build_console``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.supervise_store import SqlAuditLog
from callcontrol.adapters.recording_status import WorkerStatus
from callcontrol.adapters.web.base import ConsoleDeps
from callcontrol.adapters.web.sessions import LoginCsrf, LoginThrottle, SessionStore
from callcontrol.adapters.web.staff_file import StaffFile
from callcontrol.config import Settings
from callcontrol.operator_services import operator_services

# A spool file this much older than its last change counts as an ingest that failed.
STUCK_S = 300


@dataclass(frozen=True)
class SpoolFile:
    name: str
    size: int
    changed_at: datetime


class SqlRecordingAlerts:
    """Recordings that staff must look at: calls whose recording is missing, and ingests that
    failed (the count since the recording worker started, from its status file: ``worker``, an
    adapters/recording_status.py WorkerStatus; and the spool files left behind)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        spool: Path,
        worker: WorkerStatus | None = None,
    ) -> None:
        self.sessions, self.spool, self.worker = sessions, spool, worker

    async def missing(self) -> list[Any]:
        from callcontrol.services import recordings

        return await recordings.missing(self.sessions)

    def failures_since_start(self) -> int:
        return self.worker.failures if self.worker is not None else 0

    def stuck_spool_files(self) -> list[SpoolFile]:
        now = time.time()
        found = []
        try:
            paths = sorted(self.spool.glob("*.raw"))
        except OSError:
            return []
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue
            if now - st.st_mtime > STUCK_S:
                found.append(
                    SpoolFile(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                )
        return found


def build_console(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    supervisor: Any,
    pin_alerts: Any,
    history: Any,
    recording_alerts: Any = None,
    live_feed: Any = None,
    listening: Any = None,
    recordings: Any = None,
    operator: Any = None,
) -> ConsoleDeps:
    c = settings.console
    return ConsoleDeps(
        staff=StaffFile(settings.path(c.staff_file)),
        audit=SqlAuditLog(sessions),
        sessions=SessionStore(c.idle_timeout_s, c.absolute_timeout_s),
        throttle=LoginThrottle(
            c.login_failures_per_user, c.login_failures_per_address, c.login_window_s
        ),
        login_csrf=LoginCsrf(),
        supervisor=supervisor,
        pin_alerts=pin_alerts,
        history=history,
        recording_alerts=recording_alerts,
        live_feed=live_feed,
        listening=listening,
        operator=operator or operator_services(settings, sessions),
        public_origin=c.public_origin,
        recordings=recordings,
    )
