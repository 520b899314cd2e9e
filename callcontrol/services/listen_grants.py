"""One-time listen ids, kept in the daemon's memory (see services/listen.py for their use).

Issued by Supervisor.listen when it originates an officer's desk into [cc-listen]; claimed once by
the FastAGI request [cc-listen] makes before any ChanSpy; forgotten when they expire. A restart
of the daemon forgets them all: a desk that rings across a restart is refused (fail closed).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

# An id is good for the desk's ring time (supervise.LISTEN_RING_MS, 30 s) and a little more (the
# answer, the FastAGI request).
GRANT_TTL = timedelta(seconds=45)
# At most this many ids waiting at once: a runaway caller cannot fill the daemon's memory.
MAX_OPEN_GRANTS = 256
# What the ids look like (secrets.token_hex(16)): anything else is refused unread.
ID_LENGTH = 32


class TooManyWaiting(Exception):
    """MAX_OPEN_GRANTS listen requests are waiting already: no new id until some are used."""


@dataclass(frozen=True)
class ListenGrant:
    """One officer's permission to listen to one call, from one desk, once."""

    listen_id: str
    call_id: int
    uniqueid: str  # the call's caller channel's uniqueid
    spy_channel: str  # that channel's name when the listen was asked for
    desk: str  # the PJSIP endpoint rung ("browser" for a listen from the console's page)
    actor: str
    role: str
    expires_at: datetime
    # The exact channel that must present the id, when the daemon knows it in advance: a
    # browser's listen (services/browser_listen.py) is AudioSocket/HOST:PORT-UUID. Empty: one
    # of the desk's PJSIP channels.
    listener: str = ""


class ListenGrants:
    """One-time listen ids, kept in memory: issued, claimed once, or forgotten when expired."""

    def __init__(self, clock: Callable[[], datetime], ttl: timedelta = GRANT_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._open: dict[str, ListenGrant] = {}

    def issue(
        self,
        *,
        call_id: int,
        uniqueid: str,
        spy_channel: str,
        desk: str,
        actor: str,
        role: str,
        listener: str = "",
    ) -> ListenGrant:
        self._expire()
        if len(self._open) >= MAX_OPEN_GRANTS:
            raise TooManyWaiting(f"{MAX_OPEN_GRANTS} listen requests are already waiting")
        grant = ListenGrant(
            secrets.token_hex(ID_LENGTH // 2),
            call_id,
            uniqueid,
            spy_channel,
            desk,
            actor,
            role,
            self.clock() + self.ttl,
            listener,
        )
        self._open[grant.listen_id] = grant
        return grant

    def revoke(self, listen_id: str) -> None:
        """Forget an id whose Originate failed: nobody may use it later."""
        self._open.pop(listen_id, None)

    def claim(self, listen_id: str) -> ListenGrant | None:
        """The grant for this id, removed: a second claim gets None. None when expired."""
        self._expire()
        return self._open.pop(listen_id, None)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, g in self._open.items() if g.expires_at <= now]:
            del self._open[key]
