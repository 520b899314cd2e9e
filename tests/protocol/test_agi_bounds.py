"""FastAgiServer limits: broken environments, silence, slow routes, too many sessions, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from callcontrol.adapters.agi.protocol import AgiChannel

from .agi_peer import MakeServer, ScriptedAsterisk, env_bytes, fastagi_servers
from .helpers import Ticker, eventually, loop_watchdog


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    async with fastagi_servers(read_timeout=5.0, session_timeout=5.0) as make:
        yield make


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, chan: AgiChannel) -> None:
        self.calls.append(chan.uniqueid)
        await chan.answer()


async def _answered_session(port: int) -> None:
    peer = await ScriptedAsterisk.connect(port)
    await peer.send_env()
    assert await peer.command() == "ANSWER"
    await peer.reply("200 result=0")
    assert await peer.expect_eof() == b""


async def _closed_quickly(peer: ScriptedAsterisk, within: float) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await peer.expect_eof(within=within + 1.0) == b""
    elapsed = loop.time() - started
    assert elapsed < within, f"closed after {elapsed:.2f}s, expected under {within}s"
    return elapsed


async def test_eof_inside_environment_does_not_freeze_the_loop(make_server: MakeServer) -> None:
    """Defect 1: panoramisk's handler spins on reader.read() == b'' forever, freezing the loop."""
    route = Recorder()
    server = await make_server({"cell-call": route}, read_timeout=5.0)
    ticker = Ticker()
    ticker.start()
    with loop_watchdog(4.0):
        peer = await ScriptedAsterisk.connect(server.port)
        await peer.send(b"agi_network: yes\nagi_network_script: cell-call\n")
        peer.writer.write_eof()  # Asterisk went away before the blank line
        await _closed_quickly(peer, within=1.0)  # not via read_timeout (5 s)
        await asyncio.sleep(0.2)
        await _answered_session(server.port)  # the server still serves
    await ticker.stop()
    assert ticker.ticks >= 10
    assert ticker.max_gap < 0.5, f"event loop stalled for {ticker.max_gap:.2f}s"
    assert route.calls == ["1700000000.1"]  # only the complete second session reached the route


@pytest.mark.parametrize(
    "data",
    [
        b"hello world\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network_script: cell-call\nagi_channel: PJSIP/\xff\xfe\n\n",
        b"\x00\x01\x02\x03\n\n",
        b"agi_network_script: cell-call\nnot an env line\n\n",
    ],
)
async def test_garbage_environment_closed_route_never_called(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    route = Recorder()
    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send(data)
    await _closed_quickly(peer, within=1.0)
    await eventually(lambda: server.active_sessions == 0)
    assert route.calls == []
    assert "protocol error" in caplog.text and "127.0.0.1" in caplog.text


@pytest.mark.parametrize(
    "data",
    [
        b"".join(b"agi_var_%d: %s\n" % (i, b"x" * 200) for i in range(200)),  # 40 KB of lines
        b"agi_network_script: " + b"a" * 70000,  # one endless line
    ],
)
async def test_oversize_environment_closed(make_server: MakeServer, data: bytes) -> None:
    route = Recorder()
    server = await make_server({"cell-call": route}, max_env_bytes=16384)
    peer = await ScriptedAsterisk.connect(server.port)
    try:
        await peer.send(data)
    except ConnectionError:
        pass  # the server may already have closed
    await _closed_quickly(peer, within=1.0)
    assert route.calls == []


async def test_silent_peer_closed_after_handshake_timeout(make_server: MakeServer) -> None:
    route = Recorder()
    server = await make_server({"cell-call": route}, handshake_timeout=0.2)
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send(env_bytes()[:-1])  # everything but the blank line, then silence
    elapsed = await _closed_quickly(peer, within=1.5)
    assert elapsed >= 0.15
    assert route.calls == []


async def test_session_timeout_closes_a_hanging_route(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled: list[bool] = []

    async def hangs(chan: AgiChannel) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    server = await make_server({"cell-call": hangs}, session_timeout=0.3)
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    elapsed = await _closed_quickly(peer, within=1.5)
    assert elapsed >= 0.2
    assert cancelled == [True]
    assert "exceeded session_timeout" in caplog.text and "PJSIP/cell-0101" in caplog.text
    await eventually(lambda: server.active_sessions == 0)


async def test_max_sessions_refuses_extra_connections(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    gate = asyncio.Event()
    calls: list[str] = []

    async def route(chan: AgiChannel) -> None:
        calls.append(chan.uniqueid)
        await gate.wait()

    server = await make_server({"cell-call": route}, max_sessions=1)
    first = await ScriptedAsterisk.connect(server.port)
    await first.send_env()
    await eventually(lambda: len(calls) == 1)
    second = await ScriptedAsterisk.connect(server.port)
    await _closed_quickly(second, within=0.5)
    assert "refused connection" in caplog.text and "max_sessions=1" in caplog.text
    assert len(calls) == 1
    gate.set()
    await first.expect_eof()
    await eventually(lambda: server.active_sessions == 0)
    third = await ScriptedAsterisk.connect(server.port)
    await third.send_env()
    await third.expect_eof()
    assert len(calls) == 2


async def test_stop_cancels_sessions_and_closes_sockets(make_server: MakeServer) -> None:
    entered: list[bool] = []
    cancelled: list[bool] = []

    async def hangs(chan: AgiChannel) -> None:
        entered.append(True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    server = await make_server({"cell-call": hangs})
    port = server.port
    peer = await ScriptedAsterisk.connect(port)
    await peer.send_env()
    await eventually(lambda: bool(entered))
    await server.stop()
    assert cancelled == [True]
    assert server.active_sessions == 0
    assert await peer.expect_eof(within=1.0) == b""
    with pytest.raises(OSError):
        await ScriptedAsterisk.connect(port)
