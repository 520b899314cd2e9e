"""The server side: the daemon's FastAGI server with its two routes, or the baseline route."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.call_end import CallEndHandler
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.adapters.agi.protocol import AgiChannel
from callcontrol.adapters.agi.server import FastAgiServer, Route
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.globals_cache import globals_source
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.config import Settings
from callcontrol.services.settle import Settler


@contextlib.asynccontextmanager
async def build_routes(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[dict[str, Route]]:
    """The daemon's two FastAGI routes, wired as callcontrol.app.Daemon.run wires them: the
    global numbers and tariffs from the daemon's cache, kept current by its task meanwhile."""
    # Imported here: the client process, which imports this package too, has no use for the
    # daemon (whose imports reach pydub, which warns when there is no ffmpeg).
    from callcontrol.app import build_authoriser, utcnow

    s = settings
    cache = globals_source(engine)
    await cache.check()
    task = asyncio.create_task(cache.run(), name="globals-cache")
    try:
        auth = build_authoriser(s, SqlCallStore(sessions), cache)
        settler = Settler(
            SqlSettlementStore(sessions), free_drop_s=s.billing.free_drop_s, clock=utcnow
        )
        handler = CellCallHandler(
            auth, PinPrompting(tries=s.site.pin_tries_per_call, digits=s.site.pin_digits)
        )
        yield {cv.CELL_CALL_SCRIPT: handler, cv.CALL_END_SCRIPT: CallEndHandler(settler)}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# What the baseline says: an allow of the daemon's own shape and size, so that only the work
# of deciding it differs.
BASELINE_ANSWER = cv.answer(cv.ALLOW, "approved_contact", "+442079460000", "1800000", "yes")


async def answer_at_once(channel: AgiChannel) -> None:
    """The baseline route: allow at once, with one SET VARIABLE."""
    await channel.set_variable(cv.ANSWER, BASELINE_ANSWER)


def _server(routes: dict[str, Route], settings: Settings, secret: str) -> FastAgiServer:
    """The daemon's FastAGI server, with the daemon's limits and a secret of the run's own."""
    a = settings.agi
    return FastAgiServer(
        routes,
        "127.0.0.1",
        0,  # an ephemeral port: never the daemon's or the lab's
        secret=secret,
        allowed_peers=a.allowed_peers,
        read_timeout=a.read_timeout_s,
        session_timeout=a.session_timeout_s,
        handshake_timeout=a.handshake_timeout_s,
        max_sessions=a.max_sessions,
        max_sessions_per_peer=a.max_sessions_per_peer,
        max_handshakes=a.max_handshakes,
    )


@contextlib.asynccontextmanager
async def _serving(
    routes: dict[str, Route], settings: Settings, secret: str
) -> AsyncIterator[FastAgiServer]:
    server = _server(routes, settings, secret)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
