"""The daemon's AudioSocket server (adapters/audiosocket/server.py) against scripted peers: the
one it expects (Asterisk with an issued UUID) and the ones any local account could be (a wrong
or used UUID, garbage, a slow or idle peer, a flood)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from callcontrol.adapters.audiosocket.server import (
    DTMF,
    ERROR,
    HANGUP,
    MAX_PAYLOAD,
    SLIN,
    UUID,
    AudioSocketServer,
)
from tests.protocol.helpers import eventually


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def uuid_frame(text: str) -> bytes:
    return frame(UUID, uuid.UUID(text).bytes)


class Sink:
    def __init__(self) -> None:
        self.pcm: list[bytes] = []
        self.why: str | None = None
        self.hangup: Callable[[], None] | None = None

    def audio(self, pcm: bytes) -> None:
        self.pcm.append(pcm)

    def closed(self, why: str) -> None:
        self.why = why


class Issued:
    """The listens' side: UUIDs issued, each claimable once."""

    def __init__(self) -> None:
        self.sinks: dict[str, Sink] = {}
        self.claims: list[str] = []

    def issue(self) -> tuple[str, Sink]:
        text, sink = str(uuid.uuid4()), Sink()
        self.sinks[text] = sink
        return text, sink

    def claim(self, text: str, hangup: Callable[[], None]) -> Sink | None:
        self.claims.append(text)
        sink = self.sinks.pop(text, None)
        if sink is not None:
            sink.hangup = hangup
        return sink


@contextlib.asynccontextmanager
async def serving(**kw: float) -> AsyncIterator[tuple[AudioSocketServer, Issued]]:
    issued = Issued()
    server = AudioSocketServer(issued.claim, "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server, issued
    finally:
        await server.stop()


async def connect(server: AudioSocketServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(server.host, server.port)


async def closed_by_server(reader: asyncio.StreamReader, within: float = 5.0) -> bytes:
    """What the server sent before it closed the connection (it must close within ``within``)."""
    async with asyncio.timeout(within):
        return await reader.read()


def tone(n: int) -> bytes:
    """20 ms of 8 kHz slin, told apart by ``n``."""
    return n.to_bytes(2, "little") * 160


async def test_an_issued_uuid_is_accepted_and_its_audio_reaches_the_sink_in_order() -> None:
    async with serving() as (server, issued):
        text, sink = issued.issue()
        reader, writer = await connect(server)
        writer.write(uuid_frame(text))
        for n in range(5):
            writer.write(frame(SLIN, tone(n)))
        writer.write(frame(DTMF, b"5"))  # ignored
        writer.write(frame(SLIN, tone(5)))
        writer.write(frame(HANGUP))
        await writer.drain()
        # Nothing is ever written back to Asterisk: the page never reaches the call.
        assert await closed_by_server(reader) == b""
        await eventually(lambda: sink.why is not None)
        assert sink.pcm == [tone(n) for n in range(6)]
        assert sink.why == "Asterisk hung up"
        assert server.refused == 0


async def test_a_uuid_that_was_not_issued_is_refused_and_never_claims_a_listen() -> None:
    async with serving() as (server, issued):
        text, sink = issued.issue()
        reader, writer = await connect(server)
        writer.write(uuid_frame(str(uuid.uuid4())) + frame(SLIN, tone(1)))
        await writer.drain()
        assert await closed_by_server(reader) == b""
        assert server.refused == 1 and text in issued.sinks  # the real one is still waiting
        assert sink.pcm == [] and sink.why is None


async def test_a_used_uuid_is_refused_the_second_time() -> None:
    async with serving() as (server, issued):
        text, sink = issued.issue()
        first_reader, first = await connect(server)
        first.write(uuid_frame(text))
        await first.drain()
        await eventually(lambda: sink.hangup is not None)
        reader, writer = await connect(server)
        writer.write(uuid_frame(text) + frame(SLIN, tone(9)))
        await writer.drain()
        assert await closed_by_server(reader) == b""
        assert server.refused == 1 and issued.claims == [text, text]
        assert sink.pcm == []  # the replayed connection's audio went nowhere
        first.write(frame(SLIN, tone(2)))  # the first connection still carries its listen
        await first.drain()
        await eventually(lambda: sink.pcm == [tone(2)])
        first.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a stray HTTP client
        frame(SLIN, tone(1)),  # audio before any UUID
        frame(UUID, b"\x01" * 15),  # a UUID frame of the wrong length
        frame(UUID, b"\x01" * 17),
        b"\x01\xff\xff" + b"\x00" * 64,  # a length beyond any frame
        frame(HANGUP),
        b"\x01\x00",  # half a header, then the peer closes
    ],
)
async def test_garbage_instead_of_a_uuid_frame_is_closed(garbage: bytes) -> None:
    async with serving() as (server, issued):
        issued.issue()
        reader, writer = await connect(server)
        writer.write(garbage)
        await writer.drain()
        if garbage == b"\x01\x00":
            writer.write_eof()
        assert await closed_by_server(reader) == b""
        await eventually(lambda: server.refused == 1)
        assert issued.claims == []


@pytest.mark.parametrize(
    ("after", "why"),
    [
        (frame(0x42, b"xx"), "protocol error: unknown frame type 0x42"),
        (frame(SLIN, b"\x01\x02\x03"), "protocol error: audio of an odd length (3 bytes)"),
        (b"\x10" + (MAX_PAYLOAD + 2).to_bytes(2, "big"), "protocol error: a frame of 4098 bytes"),
        (frame(ERROR, b"\x02"), "Asterisk reported an error (02)"),
        (b"", "Asterisk closed the connection"),
    ],
)
async def test_after_the_uuid_anything_but_audio_ends_the_listen_with_the_reason(
    after: bytes, why: str
) -> None:
    async with serving() as (server, issued):
        text, sink = issued.issue()
        reader, writer = await connect(server)
        writer.write(uuid_frame(text) + frame(SLIN, tone(1)) + after)
        await writer.drain()
        if not after:
            writer.close()
        await eventually(lambda: sink.why is not None)
        assert sink.pcm == [tone(1)]
        assert sink.why is not None and sink.why.startswith(why)


async def test_a_slow_peer_is_closed_when_its_uuid_is_not_whole_in_time() -> None:
    async with serving(handshake_timeout=0.3) as (server, issued):
        text, sink = issued.issue()
        reader, writer = await connect(server)
        whole = uuid_frame(text)
        writer.write(whole[:2])  # a slowloris: two bytes, then nothing for a while
        await writer.drain()
        assert await closed_by_server(reader) == b""
        assert server.refused == 1
        with contextlib.suppress(ConnectionError):
            writer.write(whole[2:])
            await writer.drain()
        assert sink.hangup is None and text in issued.sinks  # never claimed


async def test_a_silent_listen_ends_after_the_idle_time() -> None:
    async with serving(idle_timeout=0.3) as (server, issued):
        text, sink = issued.issue()
        reader, writer = await connect(server)
        writer.write(uuid_frame(text))
        await writer.drain()
        assert await closed_by_server(reader) == b""
        assert sink.why == "no audio from Asterisk for 0.3 s"


async def test_the_listens_hangup_closes_the_connection() -> None:
    """The page left: the sink hangs up, Asterisk sees the socket close (and hangs up)."""
    async with serving() as (server, issued):
        text, sink = issued.issue()
        reader, writer = await connect(server)
        writer.write(uuid_frame(text))
        await writer.drain()
        await eventually(lambda: sink.hangup is not None)
        assert sink.hangup is not None
        sink.hangup()
        assert await closed_by_server(reader) == b""
        await eventually(lambda: sink.why is not None)


async def test_a_flood_of_silent_connections_cannot_crowd_out_asterisk() -> None:
    async with serving(max_handshakes=4, handshake_timeout=30) as (server, issued):
        flood = [await connect(server) for _ in range(12)]
        await asyncio.sleep(0.1)
        text, sink = issued.issue()
        reader, writer = await connect(server)
        writer.write(uuid_frame(text) + frame(SLIN, tone(3)))
        await writer.drain()
        await eventually(lambda: sink.pcm == [tone(3)])
        # The oldest of the flood were closed to make room; at most 4 ever waited.
        closed = 0
        for flood_reader, _ in flood:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    if await flood_reader.read() == b"":
                        closed += 1
        assert closed >= len(flood) + 1 - 4
        for _, flood_writer in flood:
            flood_writer.close()
        writer.close()


async def test_stopping_the_server_ends_the_listens_it_carries() -> None:
    issued = Issued()
    server = AudioSocketServer(issued.claim, "127.0.0.1", 0)  # type: ignore[arg-type]
    await server.start()
    text, sink = issued.issue()
    reader, writer = await connect(server)
    writer.write(uuid_frame(text))
    await writer.drain()
    await eventually(lambda: sink.hangup is not None)
    await server.stop()
    assert await closed_by_server(reader) == b""
    assert sink.why is not None
