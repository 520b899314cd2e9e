"""The supervision API (aiohttp): each handler parses, calls the Supervisor and serialises.

Authentication: ``Authorization: Bearer TOKEN`` against the tokens file (auth.py). 401 without
a valid token, 403 for the wrong role. Every answer is JSON; errors are {"error": "..."}. The
service's errors become status codes here, and only here:

    Invalid 400, Refused 403, NotFound 404, AsteriskUnavailable 409 (nothing sent),
    AsteriskActionLost 502 (outcome unknown, never resent), AsteriskFailed 502.

Every request is logged with who made it, what it asked and the status it got.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web

from callcontrol.adapters.http.auth import ADMIN, OFFICER, TokenFile, bearer_token
from callcontrol.services.supervise import (
    Actor,
    AsteriskActionLost,
    AsteriskFailed,
    AsteriskUnavailable,
    Invalid,
    LiveCall,
    NotFound,
    Refused,
    SuperviseError,
    Supervisor,
    Sweep,
)

log = logging.getLogger("callcontrol.http")

SUPERVISOR = web.AppKey("supervisor", Supervisor)
TOKENS = web.AppKey("tokens", TokenFile)
PRINCIPAL = web.RequestKey("principal", Actor)
MAX_BODY = 64 * 1024
# Polled by monitoring every few seconds: logged at debug level when they succeed.
POLLED = frozenset({"/health", "/ready", "/metrics"})

STATUS: tuple[tuple[type[SuperviseError], int], ...] = (
    (Invalid, 400),
    (Refused, 403),
    (NotFound, 404),
    (AsteriskUnavailable, 409),
    (AsteriskActionLost, 502),
    (AsteriskFailed, 502),
)
UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="callcontrol"'}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than 2xx decided at the edge (bad token, bad body, ...)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_dumps = partial(json.dumps, default=_default)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def status_of(error: SuperviseError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as JSON, and one log line per request: who, what, the answer."""
    started = time.monotonic()
    response: web.StreamResponse | None = None
    error, status, headers = "", 500, {}
    try:
        response = await handler(request)
        status = response.status
    except ApiError as e:
        error, status, headers = str(e), e.status, e.headers
    except SuperviseError as e:
        error, status = str(e), status_of(e)
    except web.HTTPException as e:  # no such route, wrong method, body too large
        error, status = e.reason.lower(), e.status
    except Exception:
        log.exception("API %s %s failed", request.method, request.path)
        error = "internal error (see the daemon's log)"
    finally:
        who = request.get(PRINCIPAL)
        quiet = status < 400 and request.path in POLLED  # scrapers and probes: not every time
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "API %s %s %s -> %d in %.0f ms%s",
            f"{who.name} ({who.role})" if who else "-",
            request.method,
            request.path_qs,
            status,
            (time.monotonic() - started) * 1000,
            f": {error}" if error else "",
        )
    return response if response is not None else _json({"error": error}, status, headers)


def authorise(request: web.Request, role: str) -> Actor:
    token = bearer_token(request.headers.get("Authorization"))
    if not token:
        raise ApiError(401, "missing bearer token (Authorization: Bearer TOKEN)", UNAUTHORISED)
    principal = request.app[TOKENS].check(token)
    if principal is None:
        raise ApiError(401, "invalid token", UNAUTHORISED)
    actor = Actor(principal.name, principal.role)
    request[PRINCIPAL] = actor
    if not principal.may(role):
        raise ApiError(403, f"the {role} role is needed (this token is an {principal.role}'s)")
    return actor


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON object sent ({} when there is no body)."""
    if not request.body_exists:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _live(live: LiveCall) -> dict[str, Any]:
    c = live.call
    return {
        "call_id": c.call_id,
        "cell": c.cell,
        "prisoner": {"prison_number": c.prison_number, "name": c.prisoner_name},
        "number": c.number,
        "started_at": c.started_at,
        "answered_at": live.answered_at,
        "seconds_left": live.seconds_left,
        "recorded": live.recorded,
        "privileged": c.privileged,
        "channel": live.channel,
    }


def _sweep(sweep: Sweep) -> dict[str, Any]:
    return {
        "calls_cut": sweep.cut,
        "calls_not_cut": [{"call_id": i, "error": why} for i, why in sweep.not_cut],
    }


# --- handlers ----------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    h = await request.app[SUPERVISOR].health()
    return _json({"ami": h.ami, "db": h.db}, 200 if h.db else 503)


async def live_calls(request: web.Request) -> web.Response:
    authorise(request, OFFICER)
    view = await request.app[SUPERVISOR].live_calls()
    calls = [_live(c) for c in view.calls]
    return _json({"asterisk_connected": view.asterisk_connected, "calls": calls})


async def cut(request: web.Request) -> web.Response:
    actor = authorise(request, OFFICER)
    call_id, data = int(request.match_info["call_id"]), await body(request)
    channel = await request.app[SUPERVISOR].cut(actor, call_id, data.get("reason"))
    return _json({"call_id": call_id, "cut": True, "channel": channel})


async def listen(request: web.Request) -> web.Response:
    actor = authorise(request, OFFICER)
    call_id, data = int(request.match_info["call_id"]), await body(request)
    endpoint = data.get("officer_endpoint")
    dialled = await request.app[SUPERVISOR].listen(actor, call_id, endpoint, data.get("reason"))
    return _json({"call_id": call_id, "listening": True, "officer_endpoint": dialled})


async def cell_disable(request: web.Request) -> web.Response:
    actor, name = authorise(request, OFFICER), request.match_info["name"]
    reason = (await body(request)).get("reason")
    sweep = await request.app[SUPERVISOR].disable_cell(actor, name, reason)
    return _json({"cell": name, "enabled": False, **_sweep(sweep)})


async def cell_enable(request: web.Request) -> web.Response:
    actor, name = authorise(request, ADMIN), request.match_info["name"]  # undoes a disable
    await request.app[SUPERVISOR].enable_cell(actor, name, (await body(request)).get("reason"))
    return _json({"cell": name, "enabled": True})


async def cell_cut_calls(request: web.Request) -> web.Response:
    actor, name = authorise(request, OFFICER), request.match_info["name"]
    reason = (await body(request)).get("reason")
    sweep = await request.app[SUPERVISOR].cut_cell_calls(actor, name, reason)
    return _json({"cell": name, **_sweep(sweep)})


async def prisoner_suspend(request: web.Request) -> web.Response:
    actor, number = authorise(request, OFFICER), request.match_info["number"]
    reason = (await body(request)).get("reason")
    sweep = await request.app[SUPERVISOR].suspend_prisoner(actor, number, reason)
    return _json({"prisoner": number, "active": False, **_sweep(sweep)})


async def prisoner_reinstate(request: web.Request) -> web.Response:
    actor, number = authorise(request, ADMIN), request.match_info["number"]  # undoes a suspend
    reason = (await body(request)).get("reason")
    await request.app[SUPERVISOR].reinstate_prisoner(actor, number, reason)
    return _json({"prisoner": number, "active": True})


async def prisoner_cut_calls(request: web.Request) -> web.Response:
    actor, number = authorise(request, OFFICER), request.match_info["number"]
    reason = (await body(request)).get("reason")
    sweep = await request.app[SUPERVISOR].cut_prisoner_calls(actor, number, reason)
    return _json({"prisoner": number, **_sweep(sweep)})


async def audit_log(request: web.Request) -> web.Response:
    authorise(request, ADMIN)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "limit must be a whole number") from None
    action = request.query.get("action") or None
    entries = await request.app[SUPERVISOR].audit_entries(limit, action)
    return _json({"entries": entries})


async def _tokens_loaded(app: web.Application) -> AsyncIterator[None]:
    """At start: read the tokens file (and say how many tokens it holds)."""
    app[TOKENS].load()
    yield
    log.info("supervision API stopped")


def make_app(
    supervisor: Supervisor,
    tokens: TokenFile,
    pin_alerts: Any = None,
    history: Any = None,
    recordings: Any = None,
) -> web.Application:
    """The API; with ``pin_alerts`` (adapters/http/alerts.py's PinAlerts) also its PIN lockout
    routes, GET /alerts and POST /cells/{name}/unlock; with ``history`` (adapters/http/
    history.py's HistoryApi) the call history, GET /calls; with ``recordings`` (adapters/http/
    recordings.py's RecordingsApi) GET /recordings and GET /recordings/{id}/audio."""
    app = web.Application(middlewares=[edge], client_max_size=MAX_BODY)
    app[SUPERVISOR] = supervisor
    app[TOKENS] = tokens
    app.cleanup_ctx.append(_tokens_loaded)
    call, cell, prisoner = r"/calls/{call_id:\d{1,18}}", "/cells/{name}", "/prisoners/{number}"
    app.router.add_get("/health", health)
    app.router.add_get("/calls/live", live_calls)
    app.router.add_post(f"{call}/cut", cut)
    app.router.add_post(f"{call}/listen", listen)
    app.router.add_post(f"{cell}/disable", cell_disable)
    app.router.add_post(f"{cell}/enable", cell_enable)
    app.router.add_post(f"{cell}/cut-calls", cell_cut_calls)
    app.router.add_post(f"{prisoner}/suspend", prisoner_suspend)
    app.router.add_post(f"{prisoner}/reinstate", prisoner_reinstate)
    app.router.add_post(f"{prisoner}/cut-calls", prisoner_cut_calls)
    app.router.add_get("/audit", audit_log)
    if pin_alerts is not None:
        from callcontrol.adapters.http import alerts  # it imports this module's helpers

        alerts.add_routes(app, pin_alerts)
    if history is not None:
        from callcontrol.adapters.http import history as history_routes

        history_routes.add_routes(app, history)
    if recordings is not None:
        from callcontrol.adapters.http import recordings as recording_routes

        recording_routes.add_routes(app, recordings)
    return app
