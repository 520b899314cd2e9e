"""The kiosk's aiohttp application: a closed set of pages and nothing else.

No way out: there is one route, a catch-all, and it serves only the pages of PAGES, matched on
the exact raw path (no decoding, no normalising: ``/statement/``, ``/%73tatement`` or
``/x/../statement`` are not pages). Everything else (the console's and the API's paths,
traversal, encoded tricks, other methods) gets the kiosk's own "not here" page. The one style
sheet is held in memory: no file is ever looked up from a path. Every answer carries a strict
Content-Security-Policy (nothing from elsewhere, forms only to the kiosk, no framing), is
never cached (the next prisoner cannot go back to the last one's pages) and sends no referrer
beyond the kiosk.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from callcontrol.adapters.kiosk import words
from callcontrol.adapters.kiosk.sessions import KioskSessions, KioskThrottle, csrf_valid, user_of
from callcontrol.adapters.web.sessions import Session
from callcontrol.services.kiosk import KioskService, SessionEnded

log = logging.getLogger("callcontrol.kiosk")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # "same-origin", not "no-referrer": with no-referrer Chromium sends "Origin: null" on POST.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), usb=(), serial=()",
}
MAX_FORM_BYTES = 4096

Handler = Callable[["Kiosk", web.Request], Awaitable[web.StreamResponse]]
PAGES: dict[tuple[str, str], Handler] = {}  # (method, raw path) -> handler; pages.py fills it


def page(method: str, path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        PAGES[(method, path)] = handler
        return handler

    return register


@dataclass
class Kiosk:
    """What the pages use: the service, the sessions, the templates, the prison's time zone."""

    service: KioskService
    sessions: KioskSessions
    throttle: KioskThrottle
    templates: jinja2.Environment
    tz: ZoneInfo
    login_answer_s: float
    css: bytes

    def page_text(self, request: web.Request, name: str, **context: object) -> str:
        session: Session | None = request.get(SESSION)
        values: dict[str, object] = {
            "session": session,
            "user": user_of(session) if session else None,
            "csrf": session.csrf if session else "",
            "idle_s": int(self.sessions.idle_s) if session else 0,
        }
        values.update(context)
        return self.templates.get_template(name).render(**values)

    def render(
        self, request: web.Request, name: str, *, status: int = 200, **context: object
    ) -> web.Response:
        body = self.page_text(request, name, **context)
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    def local(self, at: datetime | None) -> str:
        if at is None:
            return ""
        return at.astimezone(self.tz).strftime("%a %d %b %Y %H:%M")


KIOSK = web.AppKey("kiosk", Kiosk)
# The request's session, set by ``dispatch`` (aiohttp 3.12+ has typed request keys).
SESSION: Any = (
    web.RequestKey("kiosk_session", Session) if hasattr(web, "RequestKey") else "kiosk_session"
)


def pounds(pence: int | None) -> str:
    if pence is None:
        return ""
    sign = "-" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100}.{abs(pence) % 100:02d}"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds // 60} min {seconds % 60:02d} s"


def _templates() -> jinja2.Environment:
    folder = resources.files("callcontrol.adapters.kiosk") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pounds"] = pounds
    env.filters["duration"] = duration
    env.filters["reason"] = words.reason
    env.globals["entry"] = words.entry
    env.globals["outcomes"] = words.OUTCOMES
    env.globals["contact_states"] = words.CONTACT_STATES
    return env


def same_origin(request: web.Request) -> bool:
    """A POST from the kiosk's own pages: Chromium sends Origin on every form POST."""
    origin = request.headers.get("Origin", "")
    return bool(request.host) and origin == f"{request.scheme}://{request.host}"


async def read_form(request: web.Request) -> dict[str, str] | None:
    """The POSTed form when it is the kiosk's own (same origin, a valid CSRF token, small);
    None otherwise."""
    if not same_origin(request):
        return _refused(request, "not from the kiosk's own origin")
    if request.content_length is None or request.content_length > MAX_FORM_BYTES:
        return _refused(request, "no length, or too long")
    data = await request.post()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    token = form.get("csrf", "")
    kiosk: Kiosk = request.app[KIOSK]
    session: Session | None = request.get(SESSION)
    if session is not None:
        valid = csrf_valid(session, token)
    else:
        valid = kiosk.sessions.pre_token_valid(request, token)
    return form if valid else _refused(request, "without the page's token")


def _refused(request: web.Request, why: str) -> None:
    log.warning("kiosk: a form sent to %s refused: %s", request.raw_path[:100], why)
    return None


@web.middleware
async def headers(request: web.Request, handler: Callable) -> web.StreamResponse:  # type: ignore[type-arg]
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as e:  # aiohttp's own refusals (a bad request line, ...)
        response = _plain(e.status, "The kiosk could not read that. Go back to the start.")
    except Exception:
        log.exception("kiosk: a page failed")
        response = _plain(500, "Something went wrong. Go back to the start, or ask staff.")
    for name, value in HEADERS.items():
        response.headers[name] = value
    return response


def _plain(status: int, text: str) -> web.Response:
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Kiosk</title>"
        '<link rel=stylesheet href="/static/kiosk.css"><main><p class=notice>'
        f'{text}</p><p><a class="button" href="/">Start</a></p></main></html>'
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


async def dispatch(request: web.Request) -> web.StreamResponse:
    kiosk: Kiosk = request.app[KIOSK]
    raw = request.raw_path.split("?", 1)[0]
    request[SESSION] = kiosk.sessions.current(request)
    handler = PAGES.get((request.method, raw))
    if handler is None:
        return kiosk.render(request, "not_here.html", status=404)
    try:
        return await handler(kiosk, request)
    except SessionEnded:
        response = kiosk.render(request, "message.html", status=403, ended=True)
        kiosk.sessions.end(request, response)
        return response


def make_kiosk_app(
    service: KioskService,
    sessions: KioskSessions,
    throttle: KioskThrottle,
    tz: ZoneInfo,
    *,
    login_answer_s: float = 0.5,
) -> web.Application:
    from callcontrol.adapters.kiosk import pages  # noqa: F401 (fills PAGES)

    css = (resources.files("callcontrol.adapters.kiosk") / "static" / "kiosk.css").read_bytes()
    app = web.Application(middlewares=[headers], client_max_size=MAX_FORM_BYTES)
    app[KIOSK] = Kiosk(service, sessions, throttle, _templates(), tz, login_answer_s, css)
    app.router.add_route("*", "/{anything:.*}", dispatch)
    return app
