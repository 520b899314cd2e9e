"""The console's sessions (server-side, in the daemon's memory) and its login throttle.

A session is a random id (256 bits) in a cookie (HttpOnly, SameSite=Strict, Secure, Path
/console/); everything else stays here: who, their role, the CSRF token of their forms, when it
began and when it was last used. It ends after ``idle_s`` without a request, after
``absolute_s`` whatever happens, at logout, and at the next request once the person's account
is disabled or its password or role changes (the account's stamp, domain/staff.py). A new id is
issued at every login (no session fixation). A restart of the daemon ends every session.

The throttle counts failed logins per username and per client address over a window; while
either is over its limit, logins for that name or from that address are refused before any
password is checked. Unknown usernames are counted like known ones (no oracle). Both tables are
bounded: the oldest entries go first.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
MAX_SESSIONS = 10_000
MAX_THROTTLED_KEYS = 50_000


@dataclass
class Session:
    sid: str
    username: str
    name: str  # the person's full name, for the pages
    role: str
    stamp: str  # the account's stamp at login
    csrf: str
    started: float
    seen: float
    notices: list[str] = field(default_factory=list)  # shown once, on the next page


class SessionStore:
    def __init__(self, idle_s: float, absolute_s: float, clock: Clock = time.monotonic) -> None:
        self.idle_s, self.absolute_s, self.clock = idle_s, absolute_s, clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def start(self, username: str, name: str, role: str, stamp: str) -> Session:
        """A new session (with a new id) for a person who has just logged in."""
        now = self.clock()
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session = Session(sid, username, name, role, stamp, csrf, now, now)
        self._sessions[session.sid] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session of this id, touched; None (and forgotten) once it has expired."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.seen > self.idle_s or now - session.started > self.absolute_s:
            del self._sessions[sid]
            return None
        session.seen = now
        self._sessions.move_to_end(sid)
        return session

    def end(self, sid: str) -> Session | None:
        return self._sessions.pop(sid, None)

    def end_all_of(self, username: str) -> int:
        gone = [sid for sid, s in self._sessions.items() if s.username == username]
        for sid in gone:
            del self._sessions[sid]
        return len(gone)


class LoginCsrf:
    """The login form's CSRF token, before anyone has a session: the HMAC of a random value the
    browser keeps in a short-lived cookie (signed double submit). Nothing is stored here."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()

    def check(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.token(nonce), token)


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=deque)


class LoginThrottle:
    """At most ``per_user`` failed logins per username and ``per_address`` per client address
    within ``window_s``; further attempts are refused until the oldest failure leaves it."""

    def __init__(
        self, per_user: int, per_address: int, window_s: float, clock: Clock = time.monotonic
    ) -> None:
        self.per_user, self.per_address, self.window_s = per_user, per_address, window_s
        self.clock = clock
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        failures = self._seen.get(key)
        if failures is None:
            return deque()
        horizon = self.clock() - self.window_s
        while failures.times and failures.times[0] <= horizon:
            failures.times.popleft()
        if not failures.times:
            del self._seen[key]
            return deque()
        return failures.times

    def retry_after(self, username: str, address: str) -> float:
        """0 if a login may be tried now, else the seconds until one may."""
        waits = []
        for key, limit in ((f"u:{username}", self.per_user), (f"a:{address}", self.per_address)):
            times = self._recent(key)
            if len(times) >= limit:
                waits.append(times[len(times) - limit] + self.window_s - self.clock())
        return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for key in (f"u:{username}", f"a:{address}"):
            failures = self._seen.setdefault(key, _Failures())
            failures.times.append(now)
            self._seen.move_to_end(key)
        while len(self._seen) > MAX_THROTTLED_KEYS:
            self._seen.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._seen.pop(f"u:{username}", None)
