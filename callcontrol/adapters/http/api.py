"""The supervision API (aiohttp): each handler parses, calls the Supervisor and serialises.

Authentication: ``Authorization: Bearer TOKEN`` against the tokens file (auth.py). 401 without
a valid token, 403 when the token's role has not the right the route needs (domain/roles.py:
an auditor reads, an officer supervises, an admin also administers and reads the audit log).
Every answer is JSON; errors are {"error": "..."}. The service's errors become status codes
here, and only here:

    Invalid 400, Refused 403, NotFound 404, Conflict 409 (already done, a limit reached),
    AsteriskUnavailable 409 (nothing sent),
    AsteriskActionLost 502 (outcome unknown, never resent), AsteriskFailed 502.

Every request is logged with who made it, what it asked and the status it got.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from aiohttp import web

from callcontrol.adapters.http import openapi, params
from callcontrol.adapters.http.auth import TokenFile, bearer_token
from callcontrol.adapters.http.errors import ApiError
from callcontrol.domain.roles import ROLES, Right, may
from callcontrol.services.errors import Conflict
from callcontrol.services.supervise import (
    MAX_AUDIT_LIMIT,
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
    (Conflict, 409),  # a kind of Invalid: first
    (Invalid, 400),
    (Refused, 403),
    (NotFound, 404),
    (AsteriskUnavailable, 409),
    (AsteriskActionLost, 502),
    (AsteriskFailed, 502),
)
UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="callcontrol"'}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


MAX_LOGGED_PATH = 300


def logged_path(request: web.Request) -> str:
    """The path and query as sent (still percent-encoded: a decoded %0A must not start a false
    log line), every character that is not printable escaped, cut short."""
    raw = request.raw_path
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in raw[:MAX_LOGGED_PATH])
    return text + "..." if len(raw) > MAX_LOGGED_PATH else text


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
            logged_path(request),
            status,
            (time.monotonic() - started) * 1000,
            f": {error}" if error else "",
        )
    return response if response is not None else _json({"error": error}, status, headers)


# What a refusal says each right is for.
RIGHT_WORDS = {
    Right.READ: "read prisoners, cells, contacts and calls",
    Right.RECORDINGS: "search and play recordings",
    Right.AUDIT: "read the audit log",
    Right.SUPERVISE: "change anything (cut, listen, approve or block contacts, disable, ...)",
    Right.ADMINISTER: "do an admin's acts (enable, reinstate, money, set-up)",
}


def refusal(role: str, right: Right) -> str:
    """Why a token of ``role`` is refused an act needing ``right`` (who may instead)."""
    allowed = " or ".join(r for r in ROLES if may(r, right))
    return f"only an {allowed} may {RIGHT_WORDS[right]}: this token is an {role}'s"


def authorise(request: web.Request, right: Right) -> Actor:
    """The token's person and role if it has ``right``; else 401 (no valid token) or 403."""
    token = bearer_token(request.headers.get("Authorization"))
    if not token:
        raise ApiError(401, "missing bearer token (Authorization: Bearer TOKEN)", UNAUTHORISED)
    principal = request.app[TOKENS].check(token)
    if principal is None:
        raise ApiError(401, "invalid token", UNAUTHORISED)
    actor = Actor(principal.name, principal.role)
    request[PRINCIPAL] = actor
    if not principal.may(right):
        log.warning("REFUSED %s (%s): %s", principal.name, principal.role, right.value)
        raise ApiError(403, refusal(principal.role, right))
    return actor


REASON_ONLY = ("reason",)


async def body(request: web.Request, fields: tuple[str, ...] = REASON_ONLY) -> dict[str, Any]:
    """The JSON object sent ({} when there is no body), with no field but ``fields`` (a
    misspelt "reson" is refused, never silently ignored)."""
    if not request.body_exists:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(params.shown(name) for name in unknown[:5])
        raise ApiError(400, f"unknown field(s) {names} (this route takes: {', '.join(fields)})")
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
    params.query(request, ())
    h = await request.app[SUPERVISOR].health()
    return _json({"ami": h.ami, "db": h.db}, 200 if h.db else 503)


async def live_calls(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    params.query(request, ())
    view = await request.app[SUPERVISOR].live_calls()
    calls = [_live(c) for c in view.calls]
    return _json({"asterisk_connected": view.asterisk_connected, "calls": calls})


async def _act(
    request: web.Request, right: Right, fields: tuple[str, ...] = REASON_ONLY
) -> tuple[Actor, dict[str, Any]]:
    """The actor (with ``right``) and the JSON body of a POST that takes no query parameter."""
    actor = authorise(request, right)
    params.query(request, ())
    return actor, await body(request, fields)


async def cut(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.SUPERVISE)
    call_id = int(request.match_info["call_id"])
    channel = await request.app[SUPERVISOR].cut(actor, call_id, data.get("reason"))
    return _json({"call_id": call_id, "cut": True, "channel": channel})


async def listen(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.SUPERVISE, ("officer_endpoint", "reason"))
    call_id, endpoint = int(request.match_info["call_id"]), data.get("officer_endpoint")
    dialled = await request.app[SUPERVISOR].listen(actor, call_id, endpoint, data.get("reason"))
    return _json({"call_id": call_id, "listening": True, "officer_endpoint": dialled})


async def cell_disable(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.SUPERVISE)
    name = params.cell_name(request)
    sweep = await request.app[SUPERVISOR].disable_cell(actor, name, data.get("reason"))
    return _json({"cell": name, "enabled": False, **_sweep(sweep)})


async def cell_enable(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.ADMINISTER)  # undoes a disable
    name = params.cell_name(request)
    await request.app[SUPERVISOR].enable_cell(actor, name, data.get("reason"))
    return _json({"cell": name, "enabled": True})


async def cell_cut_calls(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.SUPERVISE)
    name = params.cell_name(request)
    sweep = await request.app[SUPERVISOR].cut_cell_calls(actor, name, data.get("reason"))
    return _json({"cell": name, **_sweep(sweep)})


async def prisoner_suspend(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.SUPERVISE)
    number = params.prison_number(request)
    sweep = await request.app[SUPERVISOR].suspend_prisoner(actor, number, data.get("reason"))
    return _json({"prisoner": number, "active": False, **_sweep(sweep)})


async def prisoner_reinstate(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.ADMINISTER)  # undoes a suspend
    number = params.prison_number(request)
    await request.app[SUPERVISOR].reinstate_prisoner(actor, number, data.get("reason"))
    return _json({"prisoner": number, "active": True})


async def prisoner_cut_calls(request: web.Request) -> web.Response:
    actor, data = await _act(request, Right.SUPERVISE)
    number = params.prison_number(request)
    sweep = await request.app[SUPERVISOR].cut_prisoner_calls(actor, number, data.get("reason"))
    return _json({"prisoner": number, **_sweep(sweep)})


AUDIT_ACTION = re.compile(r"[a-z][a-z0-9_]{0,31}")


async def audit_log(request: web.Request) -> web.Response:
    authorise(request, Right.AUDIT)
    query = params.query(request, ("limit", "action"))
    limit = params.whole(query, "limit", 100, 1, MAX_AUDIT_LIMIT)
    action = query.get("action") or None
    if action is not None:
        params.matching(action, AUDIT_ACTION, "action", "a word such as cut, listen or approve")
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
    operator: Any = None,
    recordings: Any = None,
) -> web.Application:
    """The API; with ``pin_alerts`` (adapters/http/alerts.py's PinAlerts) also its PIN lockout
    routes, GET /alerts and POST /cells/{name}/unlock; with ``history`` (adapters/http/
    history.py's HistoryApi) the call history, GET /calls; with ``operator`` (operator_services.
    py's OperatorServices) the reads of cells, prisoners and contacts and the contact acts
    (adapters/http/people.py, contacts.py); with ``recordings`` (adapters/http/recordings.py's
    RecordingsApi) GET /recordings and GET /recordings/{id}/audio."""
    app = web.Application(middlewares=[edge], client_max_size=MAX_BODY)
    app[SUPERVISOR] = supervisor
    app[TOKENS] = tokens
    app.cleanup_ctx.append(_tokens_loaded)
    call, cell, prisoner = r"/calls/{call_id:\d{1,18}}", "/cells/{name}", "/prisoners/{number}"
    app.router.add_get("/health", health)
    openapi.add_routes(app)
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
    if operator is not None:
        from callcontrol.adapters.http import people

        people.add_routes(app, operator)
    if recordings is not None:
        from callcontrol.adapters.http import recordings as recording_routes

        recording_routes.add_routes(app, recordings)
    return app
