"""Listening in from the console's page, without a desk phone.

An officer asks to listen to a live call (``BrowserListen.request``, from a CSRF-protected
form). The daemon checks the person's right and the call (Supervisor.listen_in_browser: never a
privileged call, refused and audited; audited under the person's name before anything starts),
issues a random AudioSocket UUID and originates ``AudioSocket/HOST:PORT/UUID`` into
[cc-listen], the same context a desk's call enters: the one-time listen id is re-checked over
FastAGI (services/listen.py) before ChanSpy, and only that exact AudioSocket channel may present
it. Asterisk connects to the daemon's AudioSocket server (adapters/audiosocket) with the UUID,
which is accepted once; what ChanSpy hears arrives there and is relayed to the page's WebSocket
(adapters/web/listen_ws.py), which plays it with Web Audio. Nothing flows the other way.

The page gets a token of its own (never the UUID): it must open its stream with it within
``pickup_s``, as the same person, once. Every listen ends, and its AudioSocket is closed (so
Asterisk hangs up and ChanSpy stops), when the page leaves, when the call ends (the AMI tracker's
hangup of the call's channel), when Asterisk ends it or never connects, or when the daemon
stops. A slow page never holds the daemon: each listen keeps at most ``max_frames`` frames
(about a second) and drops the oldest. At most ``max_streams`` listens at once, and
``max_per_person`` of one person's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from callcontrol.domain.roles import Right, may
from callcontrol.services.supervise import (
    LISTEN_REFUSED,
    Actor,
    AsteriskUnavailable,
    AuditNote,
    NotFound,
    Refused,
    SuperviseError,
    Supervisor,
    clean_reason,
)

log = logging.getLogger("callcontrol.listen.browser")

TOKEN_BYTES = 24
MAX_STREAMS = 8
MAX_PER_PERSON = 2
PICKUP_S = 20.0  # the page must open its stream within this
CONNECT_S = 10.0  # Asterisk must connect to the AudioSocket within this
MAX_FRAMES = 50  # about a second of 20 ms frames, per listen
# When the call ends, ChanSpy ends and Asterisk closes the AudioSocket, often a few milliseconds
# before AMI's Hangup of the call reaches the daemon: a listen that was hearing audio waits this
# long for that Hangup, so that the page says why it ended (the call ended) and not how.
HANGUP_GRACE_S = 2.0

WAITING, LISTENING, ENDED = "waiting", "listening", "ended"


@dataclass(eq=False)
class ListenStream:
    """One browser's listen to one call: the AudioSocket's sink and the page's source."""

    token: str  # the page's handle (in its WebSocket's address)
    uuid: str  # Asterisk's AudioSocket UUID: never shown to the page
    actor: Actor
    call_id: int
    uniqueid: str = ""  # the call's caller channel
    spied: str = ""  # that channel's name
    state: str = WAITING
    ended: str = ""  # why, once ENDED
    attached: bool = False  # the page has opened its stream
    frames: deque[bytes] = field(default_factory=lambda: deque(maxlen=MAX_FRAMES))
    dropped: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _hangup: Callable[[], None] | None = None
    _on_end: Callable[[ListenStream], None] | None = None
    _timers: list[asyncio.TimerHandle] = field(default_factory=list)

    # --- the AudioSocket's side (adapters/audiosocket/server.py's AudioSink) ---

    def audio(self, pcm: bytes) -> None:
        if self.state == ENDED:
            return
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1  # the page is slow: the oldest audio goes
        self.frames.append(pcm)
        self.state = LISTENING
        self._wake.set()

    def closed(self, why: str) -> None:
        if self.state == WAITING:  # no audio ever came: [cc-listen] refused, or the call ended
            self.end(f"{why} before any audio (refused at the start, or the call ended)")
        elif self.state == LISTENING:  # the call's Hangup may be on its way (HANGUP_GRACE_S)
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(HANGUP_GRACE_S, self.end, why))

    # --- the page's side ---

    async def chunks(self) -> AsyncIterator[bytes]:
        """The audio as it comes, until the listen ends (then ``ended`` says why)."""
        while True:
            while self.frames:
                yield self.frames.popleft()
            if self.state == ENDED:
                return
            self._wake.clear()
            await self._wake.wait()

    def end(self, why: str) -> None:
        """End the listen (once): close the AudioSocket, so Asterisk hangs up its channel."""
        if self.state == ENDED:
            return
        self.state, self.ended = ENDED, why
        for timer in self._timers:
            timer.cancel()
        hangup, self._hangup = self._hangup, None
        if hangup is not None:
            hangup()
        self._wake.set()
        if self._on_end is not None:
            self._on_end(self)
        log.info("LISTEN (browser) call %s by %s ended: %s", self.call_id, self.actor.name, why)


class BrowserListen:
    """The listens from browsers in progress, keyed by the page's token and by UUID."""

    def __init__(
        self,
        supervisor: Supervisor,
        address: Callable[[], str],
        *,
        max_streams: int = MAX_STREAMS,
        max_per_person: int = MAX_PER_PERSON,
        pickup_s: float = PICKUP_S,
        connect_s: float = CONNECT_S,
    ) -> None:
        self.supervisor = supervisor
        self.address = address  # HOST:PORT of the daemon's AudioSocket server, once it listens
        self.max_streams, self.max_per_person = max_streams, max_per_person
        self.pickup_s, self.connect_s = pickup_s, connect_s
        self._by_token: dict[str, ListenStream] = {}
        self._by_uuid: dict[str, ListenStream] = {}  # until Asterisk connects

    def streams(self) -> list[ListenStream]:
        return list(self._by_token.values())

    async def request(self, actor: Actor, call_id: int, reason: object) -> ListenStream:
        """Start listening to the call for this person's page; the stream's token goes to it."""
        why = clean_reason(reason)
        if not may(actor.role, Right.SUPERVISE):
            await self._refuse(actor, call_id, why, f"the {actor.role} role may not listen")
            raise Refused(f"the {actor.role} role may not listen to calls")
        address = self.address()
        if not address:
            raise AsteriskUnavailable("the daemon's AudioSocket server is not listening")
        call = await self.supervisor.store.call(call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        mine = sum(1 for s in self._by_token.values() if s.actor.name == actor.name)
        if mine >= self.max_per_person:
            raise Refused(
                f"you are listening to {mine} calls already (at most {self.max_per_person}): "
                "close one first"
            )
        if len(self._by_token) >= self.max_streams:
            raise AsteriskUnavailable(
                f"{self.max_streams} listens are in progress (the most at once): try again later"
            )
        stream = ListenStream(
            secrets.token_urlsafe(TOKEN_BYTES), str(uuid.uuid4()), actor, call_id, call.uniqueid
        )
        stream._on_end = self._forget
        self._by_token[stream.token] = stream
        self._by_uuid[stream.uuid] = stream
        loop = asyncio.get_running_loop()
        stream._timers.append(loop.call_later(self.pickup_s, self._not_picked_up, stream))
        stream._timers.append(loop.call_later(self.connect_s, self._not_connected, stream))
        try:
            stream.spied = await self.supervisor.listen_in_browser(
                actor,
                call_id,
                why,
                dial=f"AudioSocket/{address}/{stream.uuid}/c(slin)",
                listener=f"AudioSocket/{address}-{stream.uuid}",
            )
        except SuperviseError as e:
            stream.end(f"not started: {e}")
            raise
        if stream.state == ENDED:  # the call ended meanwhile, or Asterisk refused at once
            raise NotFound(f"listening to call {call_id} ended at once: {stream.ended}")
        return stream

    def attach(self, token: str, actor: Actor) -> ListenStream:
        """The stream for the page that asked: same person, once. NotFound otherwise."""
        stream = self._by_token.get(token)
        if stream is None or stream.attached or stream.actor != actor:
            raise NotFound("no such listen (ended, expired, already open, or someone else's)")
        stream.attached = True
        return stream

    def claim(self, audiosocket_uuid: str, hangup: Callable[[], None]) -> ListenStream | None:
        """For the AudioSocket server: the stream of an issued UUID, once."""
        stream = self._by_uuid.pop(audiosocket_uuid, None)
        if stream is None or stream.state == ENDED:
            return None
        stream._hangup = hangup
        return stream

    def call_ended(self, uniqueid: str) -> None:
        """The AMI tracker saw a channel hang up: end the listens to that call."""
        for stream in [s for s in self._by_token.values() if s.uniqueid == uniqueid]:
            stream.end("the call ended")

    def stop(self) -> None:
        for stream in list(self._by_token.values()):
            stream.end("the daemon is stopping")

    def _forget(self, stream: ListenStream) -> None:
        self._by_token.pop(stream.token, None)
        self._by_uuid.pop(stream.uuid, None)

    def _not_picked_up(self, stream: ListenStream) -> None:
        if not stream.attached:
            stream.end(f"the page did not open the stream within {self.pickup_s:g} s")

    def _not_connected(self, stream: ListenStream) -> None:
        if stream.uuid in self._by_uuid:
            stream.end(f"Asterisk did not connect within {self.connect_s:g} s")

    async def _refuse(self, actor: Actor, call_id: int, why: str, detail: str) -> None:
        log.warning("LISTEN (browser) refused: call %s, %s: %s", call_id, actor.name, detail)
        note = AuditNote(actor.name, actor.role, LISTEN_REFUSED, f"call:{call_id}", why, detail)
        await self.supervisor.audit.record(note)
