"""Logging in and out, and the home page.

One answer for an unknown username, a wrong password and a disabled account (and the same
work: an unknown username's password is checked against a dummy hash), so the page tells an
attacker nothing about which names exist. Failed logins are throttled per username and per
client address (sessions.py). Every login, failed login and logout is audited.
"""

from __future__ import annotations

import asyncio
import logging
import math

from aiohttp import web

from callcontrol.adapters.web.base import (
    COOKIE,
    PREFIX,
    CsrfRefused,
    _form,
    audit,
    current_staff,
    deps,
    form,
    render,
    session_of,
    url,
)
from callcontrol.domain.roles import Right, may
from callcontrol.domain.staff import MAX_PASSWORD, hash_password, stamp, verify_password
from callcontrol.services.supervise import Actor, AuditNote

log = logging.getLogger("callcontrol.console")

LOGIN_COOKIE = "cc_login"
LOGIN_COOKIE_S = 3600
REFUSED = "Wrong username or password, or this account may not log in."
# Checking a password costs 32 MiB and tens of milliseconds: at most two at once.
_CHECKING = asyncio.Semaphore(2)
_dummy: list[str] = []
UNKNOWN_ACTOR = "(unknown user)"


def _cookie_options(request: web.Request) -> dict[str, object]:
    return {"path": PREFIX + "/", "httponly": True, "secure": True, "samesite": "Strict"}


def _plain_http_elsewhere(request: web.Request) -> bool:
    """Plain HTTP to an address other than loopback: browsers drop Secure cookies there."""
    if deps(request).public_origin:
        return False  # a reverse proxy serves it over https
    host = (request.url.host or "").strip("[]")
    return request.scheme != "https" and host not in ("127.0.0.1", "localhost", "::1")


async def _check(password: str, stored: str | None) -> bool:
    """Does the password match? With no account, the same work against a dummy hash."""
    async with _CHECKING:
        if stored is None:
            if not _dummy:
                _dummy.append(await asyncio.to_thread(hash_password, "dummy password 1"))
            await asyncio.to_thread(verify_password, password, _dummy[0])
            return False
        return await asyncio.to_thread(verify_password, password, stored)


def _login_page(
    request: web.Request, *, message: str = "", status: int = 200, username: str = ""
) -> web.Response:
    d = deps(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or d.login_csrf.new_nonce()
    response = render(
        request,
        "login.html",
        status=status,
        message=message,
        username=username,
        csrf=d.login_csrf.token(nonce),
        insecure=_plain_http_elsewhere(request),
        bye="bye" in request.query,
    )
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_S, **_cookie_options(request))  # type: ignore[arg-type]
    return response


async def login_get(request: web.Request) -> web.Response:
    if session_of(request) is not None:
        return web.Response(status=303, headers={"Location": url("/")})
    return _login_page(request)


async def login_post(request: web.Request) -> web.Response:
    d = deps(request)
    data = await _form(request)  # same origin, or CsrfRefused
    if not d.login_csrf.check(request.cookies.get(LOGIN_COOKIE), data.get("csrf_token")):
        if not request.cookies.get(LOGIN_COOKIE):
            return _login_page(
                request,
                status=400,
                message="Your browser did not keep the console's cookie. Allow cookies for "
                "this site, and use its https address (or the loopback address on this "
                "machine).",
            )
        raise CsrfRefused("the login form's security token is missing or wrong")
    username = data.get("username", "").strip().lower()[:64]
    password = data.get("password", "")
    address = request.remote or "-"
    wait = d.throttle.retry_after(username, address)
    if wait > 0:
        log.warning("console: login of %r from %s refused: too many failures", username, address)
        minutes = max(1, math.ceil(wait / 60))
        return _login_page(
            request,
            status=429,
            username=username,
            message=f"Too many failed logins. Try again in {minutes} minute(s), or ask an "
            "administrator.",
        )
    account = d.staff.get(username) if username else None
    stored = account.password if account is not None and len(password) <= MAX_PASSWORD else None
    ok = await _check(password[:MAX_PASSWORD], stored)
    if not ok or account is None or account.disabled:
        d.throttle.failed(username, address)
        if account is None:
            note = AuditNote(UNKNOWN_ACTOR, "-", "login_failed", "console", "", f"from {address}")
        else:
            why = "account disabled" if account.disabled else "wrong password"
            note = AuditNote(
                account.username,
                account.role,
                "login_failed",
                "console",
                "",
                f"{why}, from {address}",
            )
        await d.audit.record(note)
        log.warning("console: failed login as %s from %s", note.actor, address)
        return _login_page(request, status=401, username=username, message=REFUSED)
    d.throttle.succeeded(username)
    old = request.cookies.get(COOKIE)
    if old:
        d.sessions.end(old)
    session = d.sessions.start(account.username, account.name, account.role, stamp(account))
    await audit(
        request, Actor(account.username, account.role), "login", "console", detail=f"from {address}"
    )
    log.info("console: %s (%s) logged in from %s", account.username, account.role, address)
    response = web.Response(status=303, headers={"Location": url("/")})
    response.set_cookie(COOKIE, session.sid, **_cookie_options(request))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path=PREFIX + "/")
    return response


async def logout(request: web.Request) -> web.Response:
    actor = current_staff(request)
    await form(request)  # CSRF-checked like every other change
    session = session_of(request)
    if session is not None:
        deps(request).sessions.end(session.sid)
    await audit(request, actor, "logout", "console")
    log.info("console: %s logged out", actor.name)
    response = web.Response(status=303, headers={"Location": url("/login?bye")})
    response.del_cookie(COOKIE, path=PREFIX + "/")
    return response


async def home(request: web.Request) -> web.Response:
    actor = current_staff(request)
    return render(
        request,
        "home.html",
        supervises=may(actor.role, Right.SUPERVISE),
        administers=may(actor.role, Right.ADMINISTER),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/login", login_get)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
