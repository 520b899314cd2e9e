"""The live calls page: /console/live.

The table is rendered with the page, then kept current by server-sent events
(/console/live/events, services/live_feed.py): a call appears when it is bridged and goes when
it ends. Officers and admins cut a call (a CSRF-protected form with a reason, Supervisor.cut)
and listen in from the page (services/browser_listen.py: a CSRF-protected POST starts it, a
WebSocket of the same person's session carries the audio to the in-page player). Auditors see
the page; its buttons are disabled for them and the server refuses the acts all the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web

from callcontrol.adapters.http.api import status_of
from callcontrol.adapters.web.base import (
    current_staff,
    deps,
    form,
    render,
    require,
    same_origin,
    secure_headers,
    see_other,
    url,
)
from callcontrol.adapters.web.listen_ws import relay
from callcontrol.domain.roles import Right, may
from callcontrol.services.browser_listen import BrowserListen
from callcontrol.services.live_feed import LiveFeed
from callcontrol.services.supervise import LiveCall, LiveView, SuperviseError

log = logging.getLogger("callcontrol.console.live")

KEEPALIVE_S = 15.0  # a comment line: proxies keep the stream, a vanished page is found
SEND_TIMEOUT_S = 10.0  # a page that does not take its update in this long is dropped
GONE_CHECK_S = 1.0  # how often a quiet stream looks whether its page has gone


def row(live: LiveCall) -> dict[str, Any]:
    """One call as the page shows it (the template and the events alike)."""
    c = live.call
    return {
        "call_id": c.call_id,
        "cell": c.cell,
        "prisoner": f"{c.prisoner_name} ({c.prison_number})",
        "number": c.number,
        "answered_at": _hms(live.answered_at),
        "seconds_left": live.seconds_left,
        "privileged": c.privileged,
        "recorded": live.recorded,
    }


def _hms(at: datetime | None) -> str:
    return at.strftime("%H:%M:%S") if at else ""


def payload(view: LiveView) -> dict[str, Any]:
    return {"asterisk_connected": view.asterisk_connected, "calls": [row(c) for c in view.calls]}


async def page(request: web.Request) -> web.Response:
    require(request, Right.READ)
    view = await _feed(request).current()
    return render(
        request,
        "live.html",
        title="Live calls",
        live=payload(view),
        may_act=_may_act(request),
    )


def _feed(request: web.Request) -> LiveFeed:
    feed = deps(request).live_feed
    if feed is None:  # a console built without the live calls (the foundation's tests)
        raise web.HTTPNotFound()
    return feed  # type: ignore[no-any-return]


def _listening(request: web.Request) -> BrowserListen:
    listening = deps(request).listening
    if listening is None:
        raise web.HTTPNotFound()
    return listening  # type: ignore[no-any-return]


def _may_act(request: web.Request) -> bool:
    return may(current_staff(request).role, Right.SUPERVISE)


async def events(request: web.Request) -> web.StreamResponse:
    """The live calls as server-sent events: "calls" with the whole table when it changes."""
    actor = require(request, Right.READ)
    feed = _feed(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    secure_headers(response)
    async with feed.watching(actor.name) as changes:
        await response.prepare(request)
        try:
            await _stream(request, response, changes)
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            log.debug("live calls: the page of %s went away", actor.name)
    return response


async def _stream(
    request: web.Request, response: web.StreamResponse, changes: AsyncIterator[LiveView]
) -> None:
    """Each change as a "calls" event, a comment line when quiet; a page that does not take
    what it is sent in time is dropped (nothing queues up for it), and one that has gone is
    let go within a second, so it holds no watcher's place."""
    loop = asyncio.get_running_loop()
    iterator = aiter(changes)
    pending: asyncio.Future[LiveView] | None = None
    last_sent = loop.time()
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=GONE_CHECK_S)
            if done:
                view, pending = pending.result(), None
                data = f"event: calls\ndata: {json.dumps(payload(view))}\n\n"
            elif request.transport is None or request.transport.is_closing():
                return
            elif loop.time() - last_sent >= KEEPALIVE_S:
                data = ": still here\n\n"
            else:
                continue
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await response.write(data.encode())
            last_sent = loop.time()
    finally:
        if pending is not None:
            pending.cancel()


async def cut(request: web.Request) -> web.Response:
    actor = require(request, Right.SUPERVISE)
    data = await form(request)
    call_id = int(request.match_info["call_id"])
    try:
        await deps(request).supervisor.cut(actor, call_id, data.get("reason"))
    except SuperviseError as e:
        return see_other(request, "/live", f"Call {call_id} was not cut: {e}")
    return see_other(request, "/live", f"Call {call_id} was cut.")


async def listen(request: web.Request) -> web.Response:
    """Start listening; the page then opens the WebSocket the answer names."""
    actor = require(request, Right.SUPERVISE)
    data = await form(request)
    call_id = int(request.match_info["call_id"])
    try:
        stream = await _listening(request).request(actor, call_id, data.get("reason"))
    except SuperviseError as e:
        return web.json_response({"error": str(e)}, status=status_of(e))
    return web.json_response({"call_id": call_id, "stream": url(f"/live/listen/{stream.token}")})


async def listen_stream(request: web.Request) -> web.StreamResponse:
    """The listen's audio, to the page of the person who started it (same origin, once).
    Browsers always send Origin on a WebSocket: another site's page (cross-site WebSocket
    hijacking) names its own and is refused."""
    actor = require(request, Right.SUPERVISE)
    if not same_origin(request):
        log.warning("listen: a WebSocket from another origin refused (%s)", actor.name)
        raise web.HTTPForbidden(text="another origin")
    try:
        stream = _listening(request).attach(request.match_info["token"], actor)
    except SuperviseError as e:
        raise web.HTTPNotFound(text=str(e)) from None
    return await relay(request, stream)


def add_routes(app: web.Application) -> None:
    call = r"/live/{call_id:\d{1,18}}"
    app.router.add_get("/live", page)
    app.router.add_get("/live/events", events)
    app.router.add_post(f"{call}/cut", cut)
    app.router.add_post(f"{call}/listen", listen)
    app.router.add_get(r"/live/listen/{token:[A-Za-z0-9_-]{16,64}}", listen_stream)
