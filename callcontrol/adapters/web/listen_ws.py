"""The WebSocket that carries a browser listen's audio to the page (services/browser_listen.py).

One direction only: binary messages of signed 16-bit little-endian 8 kHz mono audio to the page,
and text messages with the listen's state ({"state": "connecting" | "ended", "reason": ...}).
Whatever the page sends is read and dropped (it must be read for the connection's pings and its
close), never passed on, and a page that sends more than a few messages is closed. A page that
does not take its audio in time (a send that waits longer than ``SEND_TIMEOUT_S``: a frozen
tab, a vanished network) is closed and its listen ended; meanwhile the listen keeps only about
a second of audio, so the daemon never waits for it. The heartbeat finds a page that vanished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from callcontrol.services.browser_listen import ListenStream

log = logging.getLogger("callcontrol.console.listen")

SEND_TIMEOUT_S = 5.0
HEARTBEAT_S = 10.0
MAX_PAGE_MESSAGES = 16  # the page has nothing to say; a few (close, pong) are allowed
SAMPLE_RATE = 8000


async def relay(request: web.Request, stream: ListenStream) -> web.WebSocketResponse:
    """Send the listen's audio to the page until it ends, then say why and close."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096)
    await ws.prepare(request)
    reader = asyncio.create_task(_drain(ws, stream), name=f"listen-page-{stream.call_id}")
    try:
        await ws.send_json({"state": "connecting", "call_id": stream.call_id, "rate": SAMPLE_RATE})
        async for chunk in stream.chunks():
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ws.send_bytes(chunk)
        with contextlib.suppress(ConnectionError, RuntimeError):
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ws.send_json({"state": "ended", "reason": stream.ended})
    except TimeoutError:
        stream.end(f"the page did not take its audio within {SEND_TIMEOUT_S:g} s")
    except (ConnectionError, RuntimeError):  # the page went away mid-send
        stream.end("the page closed the stream")
    finally:
        stream.end("the page closed the stream")
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse, stream: ListenStream) -> None:
    """Read (and drop) what the page sends; its close or silence ends the listen."""
    seen = 0
    async for msg in ws:
        seen += 1
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) and seen > MAX_PAGE_MESSAGES:
            log.warning("listen: the page of %s sent too much; closed", stream.actor.name)
            break
    stream.end("the page closed the stream")
