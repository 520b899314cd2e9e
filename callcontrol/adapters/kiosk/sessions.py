"""Kiosk sessions: the console's primitives (adapters/web/sessions.py: SessionStore, LoginCsrf)
with the kiosk's cookies and times.

A session is a random id in an HttpOnly SameSite=Strict cookie; who signed in, their CSRF token
and its times stay in the daemon's memory. It ends after ``idle_s`` without a request (two
minutes by default), after ``absolute_s`` in all, at sign-out, and when the service says the
prisoner may no longer use it (a new PIN: the session's stamp is the PIN hash it was opened
with; suspended; out of every cell). A restart of the daemon ends every session.

The sign-in form has no session yet: its token is the HMAC of a random value kept in a cookie
(signed double submit), so a page of another origin can neither read nor forge it. The token
is checked with the same-origin ``Origin`` header on every POST (adapters/kiosk/app.py).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from aiohttp import web

from callcontrol.adapters.web.sessions import LoginCsrf, LoginThrottle, Session, SessionStore
from callcontrol.services.kiosk import KioskUser

SESSION_COOKIE = "kiosk_session"
PRE_COOKIE = "kiosk_pre"
ROLE = "prisoner"


def user_of(session: Session) -> KioskUser:
    return KioskUser(session.username, session.name, session.stamp)


def _cookie(response: web.StreamResponse, name: str, value: str, secure: bool) -> None:
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="Strict", secure=secure or None
    )


class KioskSessions:
    def __init__(
        self,
        idle_s: float,
        absolute_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        secure_cookies: bool = False,
    ) -> None:
        if not 0 < idle_s <= absolute_s:
            raise ValueError("need 0 < idle_timeout_s <= session_max_s")
        self.store = SessionStore(idle_s, absolute_s, clock)
        self.idle_s = idle_s
        self.secure = secure_cookies
        self.login_csrf = LoginCsrf()

    def current(self, request: web.Request) -> Session | None:
        """The request's session if it is still valid (its last use is then now)."""
        session = self.store.get(request.cookies.get(SESSION_COOKIE))
        return session if session is not None and session.role == ROLE else None

    def start(self, user: KioskUser, response: web.StreamResponse) -> Session:
        """A new session, with a new id: nothing known before sign-in is worth anything after."""
        session = self.store.start(user.prison_number, user.name, ROLE, user.pin_hash)
        _cookie(response, SESSION_COOKIE, session.sid, self.secure)
        response.del_cookie(PRE_COOKIE, path="/")
        return session

    def end(self, request: web.Request, response: web.StreamResponse) -> None:
        self.store.end(request.cookies.get(SESSION_COOKIE, ""))
        response.del_cookie(SESSION_COOKIE, path="/")

    # --- the sign-in form's token (no session yet) ---------------------------------------------

    def pre_token(self, request: web.Request, response: web.StreamResponse) -> str:
        """The sign-in form's CSRF token, setting the cookie it is bound to when missing."""
        nonce = request.cookies.get(PRE_COOKIE, "")
        if len(nonce) < 24:
            nonce = self.login_csrf.new_nonce()
            _cookie(response, PRE_COOKIE, nonce, self.secure)
        return self.login_csrf.token(nonce)

    def pre_token_valid(self, request: web.Request, token: str) -> bool:
        return self.login_csrf.check(request.cookies.get(PRE_COOKIE), token)


DAY_S = 86400.0
ANY = "kiosk"  # the throttles count per kiosk (address) only: the cell's lockout is per prisoner


class KioskThrottle:
    """Refused sign-ins per kiosk (its client address), in a short window and in a day (the
    console's LoginThrottle, twice). The handset's lockout bounds the tries against one cell;
    this bounds a kiosk's tries against all of them together: without it one kiosk could
    spend every cell's daily budget, a few tries each, and never lock any of them."""

    def __init__(
        self,
        per_window: int,
        window_s: float,
        per_day: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(per_window, window_s, per_day) < 1:
            raise ValueError("failures_per_window, failures_window_s, failures_per_day >= 1")
        never = 1 << 62  # per username: not counted here
        self._throttles = (
            LoginThrottle(never, per_window, window_s, clock),
            LoginThrottle(never, per_day, DAY_S, clock),
        )

    def blocked(self, address: str) -> bool:
        return any(t.retry_after(ANY, address) > 0 for t in self._throttles)

    def failed(self, address: str) -> None:
        for t in self._throttles:
            t.failed(ANY, address)


def csrf_valid(session: Session, token: str) -> bool:
    return hmac.compare_digest(session.csrf.encode(), token.encode())
