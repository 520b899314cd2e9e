"""Alerts: what staff must look at. Handsets locked by wrong PINs (someone may be guessing a
cellmate's PIN), calls whose recording is missing, and recording ingests that failed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from callcontrol.adapters.web.base import deps, render, require
from callcontrol.domain.roles import Right

DAYS = 7


class RecordingAlerts(Protocol):
    """adapters/web/setup.py's SqlRecordingAlerts."""

    async def missing(self) -> list[Any]: ...

    def failures_since_start(self) -> int: ...

    def stuck_spool_files(self) -> list[Any]: ...


async def alerts(request: web.Request) -> web.Response:
    require(request, Right.READ)
    d = deps(request)
    lockouts = await d.pin_alerts.alerts(datetime.now(UTC), DAYS) if d.pin_alerts else []
    recordings: RecordingAlerts | None = d.recording_alerts
    return render(
        request,
        "alerts.html",
        days=DAYS,
        lockouts=lockouts,
        in_force=sum(1 for a in lockouts if a["status"] == "in force"),
        missing=await recordings.missing() if recordings else [],
        failures=recordings.failures_since_start() if recordings else 0,
        stuck=recordings.stuck_spool_files() if recordings else [],
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/alerts", alerts)
