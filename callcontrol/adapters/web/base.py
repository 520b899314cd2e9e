"""What every page of the staff console uses: its services (ConsoleDeps), who is logged in
(current_staff, require), pages (render), forms (form: CSRF and same-origin checked), and the
edge every request passes (security headers, the session, HTML error pages).

A page module (pages/<page>.py) exposes ``add_routes(app)``; its handlers begin with
``actor = require(request, Right.X)`` and call a service with that Actor, so the audit log
names the person. A change is a POST read with ``await form(request)`` and answered with
``see_other(request, "/path", "what was done")`` (post, redirect, get).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from callcontrol.adapters.http.api import PRINCIPAL, status_of
from callcontrol.adapters.web.sessions import LoginCsrf, LoginThrottle, Session, SessionStore
from callcontrol.adapters.web.staff_file import StaffFile
from callcontrol.domain.money import pounds
from callcontrol.domain.roles import ADMIN, AUDITOR, OFFICER, Right, may
from callcontrol.domain.staff import stamp
from callcontrol.services.errors import ServiceError
from callcontrol.services.supervise import Actor, AuditLog, AuditNote

log = logging.getLogger("callcontrol.console")

HERE = Path(__file__).parent
PREFIX = "/console"
COOKIE = "cc_console"
SESSION = web.RequestKey("console_session", Session)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
ROLE_NAMES = {OFFICER: "Officer", ADMIN: "Administrator", AUDITOR: "Auditor"}


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str  # under PREFIX
    right: Right


# The console's menu, in order; an item is shown when its page exists and the person's role
# has its right. A page's author adds its item here.
NAV: tuple[NavItem, ...] = (
    NavItem("Home", "/", Right.READ),
    NavItem("Live calls", "/live", Right.READ),
    NavItem("Contacts to approve", "/contacts", Right.READ),
    NavItem("Prisoners", "/prisoners", Right.READ),
    NavItem("Cells", "/cells", Right.READ),
    NavItem("Call history", "/history", Right.READ),
    NavItem("Recordings", "/recordings", Right.RECORDINGS),
    NavItem("Alerts", "/alerts", Right.READ),
    NavItem("Audit log", "/audit", Right.AUDIT),
)


@dataclass
class ConsoleDeps:
    """The services the console's pages use. ``staff``, ``sessions``, ``throttle`` and
    ``audit`` are the foundation's; each page's author adds the fields of their services (with
    a default of None, so that the foundation's tests can leave them out)."""

    staff: StaffFile
    audit: AuditLog
    sessions: SessionStore
    throttle: LoginThrottle
    login_csrf: LoginCsrf
    supervisor: Any = None  # services/supervise.Supervisor: cells, cuts
    pin_alerts: Any = None  # adapters/http/alerts.PinAlerts: PIN lockouts, unlock
    history: Any = None  # adapters/http/history.HistoryApi: call history
    operator: Any = None  # callcontrol/operator_services.OperatorServices: cells, prisoners,
    # contacts, numbers, accounts (services/*.py)
    recording_alerts: Any = None  # pages/alerts.RecordingAlerts: missing, failed ingests
    live_feed: Any = None  # services/live_feed.LiveFeed: the live calls page's table
    listening: Any = None  # services/browser_listen.BrowserListen: listening from the page
    recordings: Any = None  # adapters/http/recordings.RecordingsApi: search, play, download
    public_origin: str = ""  # [console] public_origin: the only origin forms come from if set


DEPS = web.AppKey("console_deps", ConsoleDeps)
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)


def deps(request: web.Request) -> ConsoleDeps:
    return request.app[DEPS]


def url(path: str) -> str:
    """The address of a console page: url("/cells/c-101") -> "/console/cells/c-101"."""
    return PREFIX + (path if path.startswith("/") else "/" + path)


# --- who is logged in --------------------------------------------------------------------------


class LoginNeeded(Exception):
    """No live session: the edge sends the browser to the login page."""


class Forbidden(Exception):
    """The person's role lacks the right: the edge answers with the 403 page."""


def session_of(request: web.Request) -> Session | None:
    """The request's live session, checked against the account as the staff file has it now:
    a disabled account, or one whose password or role changed, ends it."""
    if SESSION in request:
        return request[SESSION]
    d = deps(request)
    session = d.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    account = d.staff.get(session.username)
    if account is None or account.disabled or stamp(account) != session.stamp:
        d.sessions.end(session.sid)
        why = "account gone" if account is None else "disabled" if account.disabled else "changed"
        log.info("console: session of %s ended (%s)", session.username, why)
        return None
    request[SESSION] = session
    request[PRINCIPAL] = Actor(session.username, session.role)  # names them in the API's log
    return session


def current_staff(request: web.Request) -> Actor:
    """Who is logged in; without a live session the browser is sent to the login page."""
    session = session_of(request)
    if session is None:
        raise LoginNeeded()
    return Actor(session.username, session.role)


def require(request: web.Request, right: Right) -> Actor:
    """Who is logged in, if their role has ``right``; the 403 page if it has not."""
    actor = current_staff(request)
    if not may(actor.role, right):
        log.warning(
            "console: REFUSED %s (%s) %s %s: the %s right is needed",
            actor.name,
            actor.role,
            request.method,
            request.path,
            right.value,
        )
        raise Forbidden(f"Your role ({actor.role}) may not do this.")
    return actor


async def audit(request: web.Request, actor: Actor, action: str, target: str, **kw: str) -> None:
    """Write an audit entry naming the person (for acts no service audits itself)."""
    await deps(request).audit.record(AuditNote(actor.name, actor.role, action, target, **kw))


# --- pages and forms ---------------------------------------------------------------------------


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["url"] = url
    env.filters["pounds"] = pounds  # pence as "£12.34"
    env.filters["utc"] = _utc  # a time as "2026-12-05 14:30:00 UTC"
    env.globals["role_names"] = ROLE_NAMES
    return env


def _utc(value: datetime | None, seconds: bool = True) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _nav(request: web.Request, role: str) -> list[dict[str, Any]]:
    known = {r.canonical for r in request.app.router.resources()}  # prefixed once mounted
    here = request.path[len(PREFIX) :] or "/"
    return [
        {"label": n.label, "href": url(n.path), "current": here == n.path}
        for n in NAV
        if url(n.path) in known and may(role, n.right)
    ]


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """The page ``template`` in the layout: the navigation for the person's role, their
    notices, and ``csrf`` (every form's hidden field) in its context."""
    session = session_of(request)
    staff = Actor(session.username, session.role) if session else None
    notices = list(session.notices) if session else []
    if session:
        session.notices.clear()
    page = request.app[TEMPLATES].get_template(template)
    html = page.render(
        staff=staff,
        staff_name=session.name if session else "",
        nav=_nav(request, staff.role) if staff else [],
        # The login form brings its own token (there may be no session yet); the logout
        # form of the layout always has the session's.
        csrf=context.pop("csrf", None) or (session.csrf if session else ""),
        session_csrf=session.csrf if session else "",
        notices=notices,
        may=lambda right: staff is not None and may(staff.role, Right(right)),
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def same_origin(request: web.Request) -> bool:
    """Does the POST come from one of our own pages? (The Origin header browsers send.)"""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    public = deps(request).public_origin
    if public:  # behind a reverse proxy: the address the browsers use
        return origin == public
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and parts.netloc == request.host


class CsrfRefused(Exception):
    """A POST without a valid CSRF token or from another origin: 403, nothing done."""


async def form(request: web.Request) -> MultiDictProxy[str]:
    """The POSTed form of a logged-in person, once its CSRF token and Origin are checked."""
    session = session_of(request)
    if session is None:
        raise LoginNeeded()
    data = await _form(request)
    token = data.get("csrf_token", "")
    if not secrets.compare_digest(token.encode(), session.csrf.encode()):
        raise CsrfRefused("the form's security token is missing or wrong")
    return data


async def _form(request: web.Request) -> MultiDictProxy[str]:
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    if not same_origin(request):
        raise CsrfRefused(
            f"the form came from another site (Origin {request.headers.get('Origin')!r})"
        )
    data = await request.post()
    return MultiDictProxy(MultiDict((k, v) for k, v in data.items() if isinstance(v, str)))


def see_other(request: web.Request, path: str, notice: str = "") -> web.Response:
    """After a change: a notice for the next page, and the browser sent there (303)."""
    session = session_of(request)
    if notice and session is not None:
        session.notices.append(notice)
    return web.Response(status=303, headers={"Location": url(path)})


# --- the edge ----------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    try:
        return render(request, "error.html", status=status, title=title, message=message)
    except Exception:  # the error page itself must not fail
        log.exception("console: could not render the %d page", status)
        return web.Response(text=f"{status} {title}", status=status)


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; the login page for who has no session; HTML pages for
    errors (the API's edge, outside this one, would make them JSON)."""
    try:
        response = await handler(request)
    except LoginNeeded:
        response = web.Response(status=303, headers={"Location": url("/login")})
    except Forbidden as e:
        response = error_page(request, 403, "Not allowed", str(e))
    except CsrfRefused as e:
        who = session_of(request)
        log.warning(
            "console: REFUSED %s %s by %s: %s",
            request.method,
            request.path,
            who.username if who else "-",
            e,
        )
        response = error_page(
            request,
            403,
            "Refused",
            "This form could not be accepted: reload the page and try again.",
        )
    except ServiceError as e:  # a service's refusal no page caught: say why
        response = error_page(request, status_of(e), "Not done", str(e))
    except web.HTTPException as e:
        if e.status in (301, 302, 303, 307, 308):
            response = web.Response(status=e.status, headers={"Location": e.location or url("/")})  # type: ignore[attr-defined]
        elif e.status == 404:
            response = error_page(request, 404, "Not found", "There is no such page.")
        else:
            response = error_page(request, e.status, e.reason, e.text or e.reason)
    except Exception:
        log.exception("console: %s %s failed", request.method, request.path)
        response = error_page(
            request, 500, "Something went wrong", "The daemon's log says what. Nothing was done."
        )
    if not response.prepared:  # a stream (server-sent events) set them before it began
        secure_headers(response)
    return response


def secure_headers(response: web.StreamResponse) -> None:
    """The console's security headers (call before ``prepare`` for a streamed answer)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
