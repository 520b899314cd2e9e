"""The API's PIN lockout routes: GET /alerts and POST /cells/{name}/unlock (GET: any
staff role; unlock: officer or admin).

A handset locked by wrong PINs is an alert for staff (someone may be guessing a cellmate's
PIN; nobody in the cell can call meanwhile). Unlocking is audited with the token's person and
the reason given. The rules live in domain/pin_lockout.py; the records in adapters/db/pin_store.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from callcontrol.adapters.http import listing, params
from callcontrol.adapters.http.api import ApiError, _json, authorise, body
from callcontrol.domain.roles import Right


class PinAlerts(Protocol):
    """What the routes need (SqlPinAlerts implements it)."""

    async def alerts(self, now: datetime, days: float) -> list[dict[str, Any]]: ...

    async def unlock(
        self, cell: str, *, actor: str, role: str, reason: str, now: datetime
    ) -> Any: ...


PIN_ALERTS = web.AppKey("pin_alerts", PinAlerts)
DAYS = re.compile(r"[0-9]{1,4}(\.[0-9]{1,3})?")


async def list_alerts(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, ("days", *listing.PAGING))
    text = given.get("days", "7")
    if not DAYS.fullmatch(text):
        raise ApiError(400, f"days must be a number such as 7 or 0.5, not {params.shown(text)}")
    days = float(text)
    if not 0 < days <= 3660:
        raise ApiError(400, "days must be more than 0 and at most 3660")
    alerts = await request.app[PIN_ALERTS].alerts(datetime.now(UTC), days)
    return _json(listing.page(given, "alerts", alerts, dict))


async def unlock(request: web.Request) -> web.Response:
    actor = authorise(request, Right.SUPERVISE)
    params.query(request, ())
    name = params.cell_name(request)
    reason = (await body(request)).get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ApiError(400, "a reason is needed to unlock a handset: it is audited")
    done = await request.app[PIN_ALERTS].unlock(
        name, actor=actor.name, role=actor.role, reason=reason, now=datetime.now(UTC)
    )
    return _json({"cell": name, "was_locked": done.was_locked, "locked_until": done.locked_until})


def add_routes(app: web.Application, alerts: PinAlerts) -> None:
    app[PIN_ALERTS] = alerts
    app.router.add_get("/alerts", list_alerts)
    app.router.add_post("/cells/{name}/unlock", unlock)
