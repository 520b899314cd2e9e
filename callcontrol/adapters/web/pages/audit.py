"""The audit log (admins and auditors): who did what, to what, when and why, newest first."""

from __future__ import annotations

from aiohttp import web

from callcontrol.adapters.web.base import deps, render, require
from callcontrol.domain.roles import Right

LIMITS = (50, 100, 500, 1000)


async def audit_log(request: web.Request) -> web.Response:
    require(request, Right.AUDIT)
    action = request.query.get("action", "").strip()
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = 100
    limit = limit if limit in LIMITS else 100
    entries = await deps(request).audit.entries(limit=limit, action=action or None)
    return render(request, "audit.html", entries=entries, action=action, limit=limit, limits=LIMITS)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audit", audit_log)
