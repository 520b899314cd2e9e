"""Cells: the list, and a cell's page with its acts: disable (an officer's: it cuts the cell's
live calls at once), enable (an admin's: it lets calls through again) and unlock a handset
locked by wrong PINs (an officer's). Each act goes through the service that audits it, with
the person's name and the reason they gave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callcontrol.adapters.web.base import deps, form, render, require, see_other
from callcontrol.domain.roles import Right
from callcontrol.services.errors import Invalid, NotFound, ServiceError
from callcontrol.services.supervise import Actor


async def _live_calls(request: web.Request, cell: str) -> list[Any]:
    supervisor = deps(request).supervisor
    if supervisor is None:
        return []
    view = await supervisor.live_calls()
    return [c for c in view.calls if c.call.cell == cell]


async def cells(request: web.Request) -> web.Response:
    require(request, Right.READ)
    cells = await deps(request).operator.cells.list()
    return render(request, "cells.html", cells=cells, now=datetime.now(UTC))


async def _cell_page(
    request: web.Request, name: str, error: str = "", status: int = 200
) -> web.Response:
    try:
        cell = await deps(request).operator.cells.get(name)
    except NotFound:
        raise web.HTTPNotFound() from None
    live = await _live_calls(request, name)
    now = datetime.now(UTC)
    return render(request, "cell.html", status=status, cell=cell, live=live, error=error, now=now)


async def cell(request: web.Request) -> web.Response:
    require(request, Right.READ)
    return await _cell_page(request, request.match_info["name"])


Act = Callable[[web.Request, Actor, str, str], Awaitable[str]]


async def _do(request: web.Request, right: Right, act: Act, why: str = "") -> web.Response:
    """Check the right and the form, ask for a reason when ``why`` says what it is for, run
    ``act`` (it returns the notice) and go back to the cell's page."""
    actor = require(request, right)
    data = await form(request)
    name, reason = request.match_info["name"], data.get("reason", "")
    if why and not reason.strip():
        return await _cell_page(request, name, f"Say why {why} (the audit log keeps it).", 400)
    try:
        done = await act(request, actor, name, reason)
    except NotFound:
        raise web.HTTPNotFound() from None
    except ServiceError as e:
        status = 400 if isinstance(e, Invalid) else 409
        return await _cell_page(request, name, error=str(e), status=status)
    return see_other(request, f"/cells/{name}", done)


async def _disable(request: web.Request, actor: Actor, name: str, reason: str) -> str:
    sweep = await deps(request).supervisor.disable_cell(actor, name, reason)
    done = f"Cell {name} disabled: every new call is refused."
    if sweep.cut:
        done += f" {len(sweep.cut)} live call(s) cut."
    for call_id, why in sweep.not_cut:
        done += f" Call {call_id} could not be cut ({why}): cut it from Live calls."
    return done


async def _enable(request: web.Request, actor: Actor, name: str, reason: str) -> str:
    await deps(request).supervisor.enable_cell(actor, name, reason)
    return f"Cell {name} enabled: its handset may call again."


async def _unlock(request: web.Request, actor: Actor, name: str, reason: str) -> str:
    done = await deps(request).pin_alerts.unlock(
        name, actor=actor.name, role=actor.role, reason=reason, now=datetime.now(UTC)
    )
    if done.was_locked:
        return f"Cell {name}'s handset unlocked."
    return f"Cell {name}'s handset was not locked; its wrong PINs so far are forgotten."


async def disable(request: web.Request) -> web.Response:
    return await _do(request, Right.SUPERVISE, _disable, "the cell is disabled")


async def enable(request: web.Request) -> web.Response:
    return await _do(request, Right.ADMINISTER, _enable)  # undoes a disable: an admin's act


async def unlock(request: web.Request) -> web.Response:
    return await _do(request, Right.SUPERVISE, _unlock, "the handset is unlocked")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/cells", cells)
    app.router.add_get("/cells/{name}", cell)
    app.router.add_post("/cells/{name}/disable", disable)
    app.router.add_post("/cells/{name}/enable", enable)
    app.router.add_post("/cells/{name}/unlock", unlock)
