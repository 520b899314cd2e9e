"""The console's prisoners: a list to find one (by prison number, name or cell), and a
prisoner's page: their cell, contacts and the history of every change to them, limits,
money (balance, reserved, available) and statement, their latest calls, and the PIN lockouts
of their cell's handset.

Right.READ (officer, admin, auditor): the page only reads. Everything comes from the services'
views (services/prisoners.py, contacts.py, accounts.py, call_history.py), as the API and the
CLI show them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callcontrol.adapters.web.base import deps, render, require
from callcontrol.adapters.web.pages.contacts import operator
from callcontrol.domain.money import pounds
from callcontrol.domain.roles import Right, may
from callcontrol.services import call_history
from callcontrol.services.call_history import HistoryFilter
from callcontrol.services.errors import NotFound

CALLS_SHOWN = 50
LOCKOUT_DAYS = 90.0
MAX_QUERY = 100


def _matches(query: str, *values: str | None) -> bool:
    return any(query in (v or "").casefold() for v in values)


async def prisoner_list(request: web.Request) -> web.Response:
    require(request, Right.READ)
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    everyone = await operator(request).prisoners.list()
    wanted = query.casefold()
    shown = [p for p in everyone if _matches(wanted, p.prison_number, p.name, p.cell)]
    return render(
        request, "prisoners.html", title="Prisoners", prisoners=shown, query=query,
        total=len(everyone),
    )  # fmt: skip


async def _calls(request: web.Request, prison_number: str) -> list[Any]:
    history = deps(request).history
    if history is None:
        return []
    page = await call_history.page(
        history.reader, HistoryFilter(prisoner=prison_number, limit=CALLS_SHOWN)
    )
    return list(page.rows)


async def _lockouts(request: web.Request, cell: str | None) -> list[dict[str, Any]]:
    alerts = deps(request).pin_alerts
    if alerts is None or cell is None:
        return []
    found = await alerts.alerts(datetime.now(UTC), LOCKOUT_DAYS)
    return [a for a in found if a.get("cell") == cell]


async def prisoner_page(request: web.Request) -> web.Response:
    actor = require(request, Right.READ)
    number = request.match_info["number"].strip().upper()
    services = operator(request)
    try:
        detail = await services.prisoners.get(number)
    except NotFound:
        raise web.HTTPNotFound() from None
    contacts = await services.contacts.of(number)
    changes = await services.contacts.history(number)
    statement = await services.accounts.statement(number)
    return render(
        request, "prisoner.html", title=f"Prisoner {number}", d=detail, p=detail.prisoner,
        contacts=contacts, changes=list(reversed(changes)), statement=list(reversed(statement)),
        calls=await _calls(request, number),
        lockouts=await _lockouts(request, detail.prisoner.cell), lockout_days=int(LOCKOUT_DAYS),
        pounds=pounds, recordings=may(actor.role, Right.RECORDINGS),
    )  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_get("/prisoners", prisoner_list)
    app.router.add_get("/prisoners/{number}", prisoner_page)
