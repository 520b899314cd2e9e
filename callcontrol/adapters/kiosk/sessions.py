"""Kiosk sessions: short, held in the daemon's memory, bound to an HttpOnly SameSite=Strict
cookie; and the CSRF tokens of the kiosk's forms.

A session is a random token (the cookie) naming who signed in, when, and when it was last
used; it ends after ``SessionTimes.idle`` without a request, after ``SessionTimes.longest`` in
all, at sign-out, and when the service says the prisoner may no longer use it (a new PIN,
suspended). A restart of the daemon ends every session: a kiosk session is minutes long.

The sign-in form has no session yet: its token is an HMAC, under a key made at start, of a
random "pre" cookie (double submit), so a page of another origin can neither read nor forge
it. A signed-in session's forms carry the session's own token. The token is checked with the
same-origin ``Origin`` header on every POST (adapters/kiosk/app.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from callcontrol.domain.kiosk import SessionTimes
from callcontrol.services.kiosk import KioskUser

SESSION_COOKIE = "kiosk_session"
PRE_COOKIE = "kiosk_pre"
MAX_SESSIONS = 2000  # the oldest is dropped beyond this: memory stays bounded


@dataclass
class Session:
    token: str
    csrf: str
    user: KioskUser
    started: datetime
    last_seen: datetime


def _cookie(response: web.StreamResponse, name: str, value: str, secure: bool) -> None:
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="Strict", secure=secure or None
    )


class KioskSessions:
    def __init__(
        self, times: SessionTimes, clock: Callable[[], datetime], *, secure_cookies: bool = False
    ) -> None:
        self.times = times
        self.clock = clock
        self.secure = secure_cookies
        self._key = secrets.token_bytes(32)  # for the sign-in form's tokens; new at each start
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    # --- signed-in sessions ------------------------------------------------------------------

    def current(self, request: web.Request) -> Session | None:
        """The request's session if it is still valid (its last use is then now)."""
        token = request.cookies.get(SESSION_COOKIE, "")
        session = self._sessions.get(token) if token else None
        if session is None:
            return None
        now = self.clock()
        if self.times.expired(session.started, session.last_seen, now):
            self._sessions.pop(token, None)
            return None
        session.last_seen = now
        return session

    def start(self, user: KioskUser, response: web.StreamResponse) -> Session:
        """A new session (a new token: nothing known before sign-in is worth anything after)."""
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, now, now)
        self._sessions[session.token] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        _cookie(response, SESSION_COOKIE, session.token, self.secure)
        response.del_cookie(PRE_COOKIE, path="/")
        return session

    def end(self, request: web.Request, response: web.StreamResponse) -> None:
        token = request.cookies.get(SESSION_COOKIE, "")
        self._sessions.pop(token, None)
        response.del_cookie(SESSION_COOKIE, path="/")

    def count(self) -> int:
        return len(self._sessions)

    # --- the sign-in form's token (no session yet) ---------------------------------------------

    def pre_token(self, request: web.Request, response: web.StreamResponse) -> str:
        """The sign-in form's CSRF token, setting the cookie it is bound to when missing."""
        pre = request.cookies.get(PRE_COOKIE, "")
        if len(pre) < 32:
            pre = secrets.token_urlsafe(32)
            _cookie(response, PRE_COOKIE, pre, self.secure)
        return self._mac(pre)

    def pre_token_valid(self, request: web.Request, token: str) -> bool:
        pre = request.cookies.get(PRE_COOKIE, "")
        return len(pre) >= 32 and hmac.compare_digest(self._mac(pre), token)

    def _mac(self, pre: str) -> str:
        return hmac.new(self._key, pre.encode(), hashlib.sha256).hexdigest()


def csrf_valid(session: Session, token: str) -> bool:
    return hmac.compare_digest(session.csrf.encode(), token.encode())
