"""The daemon's AudioSocket server: where Asterisk sends the audio of a browser's listen.

Asterisk's chan_audiosocket, asked (by the daemon's Originate) for
``AudioSocket/127.0.0.1:PORT/UUID``, connects here and sends frames: a 3-byte header (a type
byte and a big-endian 16-bit payload length) and the payload. The first frame is the UUID
(type 0x01, 16 bytes); then signed linear 16-bit 8 kHz audio (0x10), DTMF (0x03), a hangup
(0x00) or an error (0xff). What ChanSpy hears is written to that channel, so it arrives here.

Anyone on the machine can connect to this port, so a connection is trusted for nothing until
its first frame names a UUID the daemon issued and nobody has used (``Claim``: once only);
that frame must arrive within ``handshake_timeout`` seconds, and at most ``max_handshakes``
connections may be waiting to send it (the oldest is closed to make room, so a flood cannot
crowd Asterisk out). Anything else (a wrong or used UUID, another first frame, an unknown type,
an oversized or odd-length payload) closes the connection. Nothing is ever written back: the
page's side of a listen never reaches the call (ChanSpy has no whisper option either).

The audio goes to the claimed ``AudioSink``, which never blocks (it drops the oldest audio
when the page is slow). The sink ends the connection by calling the ``hangup`` it was given:
Asterisk then hangs up its AudioSocket channel, and ChanSpy stops.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("callcontrol.audiosocket")

HANGUP, UUID, DTMF, SLIN, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
HEADER = 3
# 20 ms of 8 kHz slin is 320 bytes; Asterisk may join a few frames. Anything larger is refused.
MAX_PAYLOAD = 4096


class AudioSink(Protocol):
    """Where one listen's audio goes (services/browser_listen.py's ListenStream)."""

    def audio(self, pcm: bytes) -> None:
        """Signed linear 16-bit little-endian 8 kHz mono; must never block."""
        ...

    def closed(self, why: str) -> None:
        """Asterisk's side has ended (hung up, error, protocol fault, silence): ``why``."""
        ...


# A UUID (canonical text) -> its sink, taken once, given the connection's hangup; else None.
Claim = Callable[[str, Callable[[], None]], AudioSink | None]


class ProtocolFault(Exception):
    """The peer sent what AudioSocket does not allow here."""


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One frame: (type, payload). IncompleteReadError at the end of the stream."""
    header = await reader.readexactly(HEADER)
    kind, length = header[0], int.from_bytes(header[1:3], "big")
    if length > MAX_PAYLOAD:
        raise ProtocolFault(f"a frame of {length} bytes (at most {MAX_PAYLOAD})")
    return kind, await reader.readexactly(length) if length else b""


class AudioSocketServer:
    """Accepts Asterisk's AudioSocket connections for the UUIDs ``claim`` knows, once each."""

    def __init__(
        self,
        claim: Claim,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        handshake_timeout: float = 2.0,
        idle_timeout: float = 30.0,
        max_handshakes: int = 16,
    ) -> None:
        self.claim = claim
        self.host, self.port = host, port
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_handshakes = max_handshakes
        self.refused = 0  # connections closed before a good UUID (for the log and the tests)
        self._server: asyncio.Server | None = None
        self._waiting: OrderedDict[asyncio.StreamWriter, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """HOST:PORT as the Originate's dial string and Asterisk's channel name give it."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("AudioSocket (listening from the browser) on %s", self.address)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A flood of connections that never name a UUID: the oldest waiting one makes room.
        while len(self._waiting) >= self.max_handshakes:
            oldest, _ = self._waiting.popitem(last=False)
            oldest.transport.abort()
        self._waiting[writer] = None
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sink: AudioSink | None = None
        why = "Asterisk closed the connection"
        try:
            sink = await self._handshake(reader, writer, peer)
            if sink is None:
                return
            why = await self._relay(reader, sink)
        except (ConnectionError, asyncio.IncompleteReadError):
            why = "Asterisk closed the connection"
        except ProtocolFault as e:
            why = f"protocol error: {e}"
            log.warning("AudioSocket %s: %s; closed", peer, e)
        finally:
            self._waiting.pop(writer, None)
            writer.transport.abort()
            if sink is not None:
                sink.closed(why)

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> AudioSink | None:
        """The claimed sink for the first frame's UUID, or None (the connection is refused)."""
        try:
            async with asyncio.timeout(self.handshake_timeout):
                kind, payload = await read_frame(reader)
        except TimeoutError:
            return self._refuse(peer, "no UUID in time")
        except (ProtocolFault, asyncio.IncompleteReadError, ConnectionError):
            return self._refuse(peer, "not an AudioSocket UUID frame")
        if kind != UUID or len(payload) != 16:
            return self._refuse(peer, f"first frame of type {kind:#04x}, {len(payload)} bytes")
        self._waiting.pop(writer, None)
        text = str(uuid.UUID(bytes=payload))
        sink = self.claim(text, writer.transport.abort)
        if sink is None:
            return self._refuse(peer, "a UUID that was not issued, or was used already")
        log.info("AudioSocket %s: Asterisk connected for a listen", peer)
        return sink

    def _refuse(self, peer: object, why: str) -> None:
        self.refused += 1
        log.warning("AudioSocket %s refused: %s", peer, why)
        return None

    async def _relay(self, reader: asyncio.StreamReader, sink: AudioSink) -> str:
        """Pass audio to the sink until the stream ends; returns why it ended."""
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    kind, payload = await read_frame(reader)
            except TimeoutError:
                return f"no audio from Asterisk for {self.idle_timeout:g} s"
            if kind == SLIN:
                if len(payload) % 2:
                    raise ProtocolFault(f"audio of an odd length ({len(payload)} bytes)")
                sink.audio(payload)
            elif kind == DTMF:
                continue
            elif kind == HANGUP:
                return "Asterisk hung up"
            elif kind == ERROR:
                return f"Asterisk reported an error ({payload.hex() or 'no code'})"
            else:
                raise ProtocolFault(f"unknown frame type {kind:#04x}")
