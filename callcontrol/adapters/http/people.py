"""The API's reads of cells and prisoners (any staff role: the read right), over the services
the console and the CLI use (services/cells.py, prisoners.py, accounts.py):

    GET /cells                          ?wing= &enabled=true|false &limit= &offset=
    GET /cells/{name}
    GET /prisoners                      ?cell= &active=true|false &limit= &offset=
    GET /prisoners/{number}             the prisoner, their money and their limits
    GET /prisoners/{number}/statement   the ledger, newest first &limit= &offset=

Every list is bounded (listing.py); every parameter is read strictly (params.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from callcontrol.adapters.http import listing, params
from callcontrol.adapters.http.api import _json, authorise
from callcontrol.domain.roles import Right
from callcontrol.operator_services import OperatorServices

SERVICES = web.AppKey("operator_services", OperatorServices)


async def list_cells(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, (*listing.PAGING, "wing", "enabled"))
    enabled = params.flag(given, "enabled")
    services = request.app[SERVICES]
    cells = [
        c
        for c in await services.cells.list()
        if (enabled is None or c.enabled == enabled)
        and ("wing" not in given or c.wing == given["wing"])
    ]
    now = datetime.now(UTC)
    return _json(listing.page(given, "cells", cells, lambda c: listing.cell(c, now)))


async def get_cell(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    params.query(request, ())
    view = await request.app[SERVICES].cells.get(params.cell_name(request))
    return _json(listing.cell(view, datetime.now(UTC)))


async def list_prisoners(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, (*listing.PAGING, "cell", "active"))
    active = params.flag(given, "active")
    cell = given.get("cell")
    if cell is not None:
        params.matching(cell, params.CELL_NAME, "cell", params.CELL_RULE)
    prisoners = [
        p
        for p in await request.app[SERVICES].prisoners.list()
        if (active is None or p.active == active) and (cell is None or p.cell == cell)
    ]
    return _json(listing.page(given, "prisoners", prisoners, listing.plain))


async def get_prisoner(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    params.query(request, ())
    detail = await request.app[SERVICES].prisoners.get(params.prison_number(request))
    return _json(listing.prisoner_detail(detail))


async def statement(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, listing.PAGING)
    number = params.prison_number(request)
    accounts = request.app[SERVICES].accounts
    lines = list(reversed(await accounts.statement(number)))  # newest first
    money = listing.money(await accounts.balance(number))
    data = listing.page(given, "lines", lines, listing.statement_line)
    return _json({"prisoner": number, "money": money, **data})


def add_routes(app: web.Application, services: OperatorServices) -> None:
    from callcontrol.adapters.http import contacts  # its routes use the same services

    app[SERVICES] = services
    app.router.add_get("/cells", list_cells)
    app.router.add_get("/cells/{name}", get_cell)
    app.router.add_get("/prisoners", list_prisoners)
    app.router.add_get("/prisoners/{number}", get_prisoner)
    app.router.add_get("/prisoners/{number}/statement", statement)
    contacts.add_routes(app)
