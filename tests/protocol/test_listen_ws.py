"""The WebSocket that carries a browser listen's audio (adapters/web/listen_ws.py), with aiohttp's
test client as the page: audio in order, the end and its reason, a page that leaves or talks."""

from __future__ import annotations

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from callcontrol.adapters.web.listen_ws import relay
from callcontrol.services.browser_listen import ENDED, ListenStream
from callcontrol.services.supervise import Actor
from tests.protocol.helpers import eventually

OFFICER = Actor("officer.smith", "officer")


def stream() -> tuple[ListenStream, list[str]]:
    s = ListenStream("token", "uuid", OFFICER, 7)
    hangups: list[str] = []
    s._hangup = lambda: hangups.append(s.ended)
    return s, hangups


async def client_for(s: ListenStream) -> TestClient:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await relay(request, s)

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_the_page_gets_the_state_the_audio_in_order_then_the_end_and_why() -> None:
    s, hangups = stream()
    client = await client_for(s)
    try:
        ws = await client.ws_connect("/ws")
        first = await ws.receive_json(timeout=5)
        assert first == {"state": "connecting", "call_id": 7, "rate": 8000}
        for n in range(3):
            s.audio(n.to_bytes(2, "little") * 160)
        got = [await ws.receive_bytes(timeout=5) for _ in range(3)]
        assert got == [n.to_bytes(2, "little") * 160 for n in range(3)]
        s.end("the call ended")
        assert await ws.receive_json(timeout=5) == {"state": "ended", "reason": "the call ended"}
        closing = await ws.receive(timeout=5)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert hangups == ["the call ended"]  # the AudioSocket was closed
    finally:
        await client.close()


async def test_a_page_that_leaves_ends_the_listen_and_closes_the_audiosocket() -> None:
    s, hangups = stream()
    client = await client_for(s)
    try:
        ws = await client.ws_connect("/ws")
        await ws.receive_json(timeout=5)
        await ws.close()
        await eventually(lambda: s.state == ENDED, within=5)
        assert s.ended == "the page closed the stream" and hangups == [s.ended]
    finally:
        await client.close()


async def test_what_the_page_sends_goes_nowhere_and_a_chatty_page_is_closed() -> None:
    s, hangups = stream()
    client = await client_for(s)
    try:
        ws = await client.ws_connect("/ws")
        await ws.receive_json(timeout=5)
        for _ in range(40):
            await ws.send_bytes(b"\x7f\x7f" * 160)  # "audio" from the page: never relayed
        await eventually(lambda: s.state == ENDED, within=5)
        assert s.ended == "the page closed the stream" and len(s.frames) == 0
        assert hangups == [s.ended]
    finally:
        await client.close()
