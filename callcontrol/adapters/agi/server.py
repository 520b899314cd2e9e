"""A bounded FastAGI server: one task per Asterisk connection, routed by agi_network_script.

Every session is bounded: the environment by ``read_timeout`` and a size cap, each reply by
``read_timeout``, the whole conversation by ``session_timeout``, and the number of concurrent
sessions by ``max_sessions``. Whatever goes wrong, the socket is closed; Asterisk then carries on
with the dialplan, which fails closed because the route never set its result variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from callcontrol.adapters.agi.protocol import (
    ENV_MAX_BYTES,
    AgiChannel,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    read_environment,
)

Route = Callable[[AgiChannel], Awaitable[None] | None]

log = logging.getLogger("callcontrol.agi")

_CLOSE_WAIT_S = 1.0
_STREAM_LIMIT = 65536


def _peer(writer: asyncio.StreamWriter) -> str:
    peer: Any = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), _CLOSE_WAIT_S)


class FastAgiServer:
    def __init__(
        self,
        routes: Mapping[str, Route],
        host: str,
        port: int,
        *,
        read_timeout: float = 20.0,
        session_timeout: float = 60.0,
        max_sessions: int = 500,
        max_env_bytes: int = ENV_MAX_BYTES,
    ) -> None:
        self._routes = {name.lstrip("/"): route for name, route in routes.items()}
        self._host = host
        self._port = port
        self._read_timeout = read_timeout
        self._session_timeout = session_timeout
        self._max_sessions = max_sessions
        self._max_env_bytes = max_env_bytes
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAgiServer already started")
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=_STREAM_LIMIT
        )
        log.info("FastAGI listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop accepting, cancel the running sessions and wait for them to close their sockets."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.gather(*sessions, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), _CLOSE_WAIT_S)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # stopping
            writer.close()
            return
        if len(self._sessions) >= self._max_sessions:
            log.warning(
                "FastAGI refused connection from %s: %d sessions active (max_sessions=%d)",
                _peer(writer),
                len(self._sessions),
                self._max_sessions,
            )
            writer.close()
            return
        task = asyncio.create_task(self._session(reader, writer))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        chan: AgiChannel | None = None
        deadline = asyncio.timeout(self._session_timeout)
        try:
            async with deadline:
                env = await read_environment(reader, self._read_timeout, self._max_env_bytes)
                chan = AgiChannel(reader, writer, env, self._read_timeout)
                await self._run_route(chan, peer)
        except AgiProtocolError as exc:
            where = f"channel {chan.channel}" if chan else "environment"
            log.warning("FastAGI from %s (%s) closed: protocol error: %s", peer, where, exc)
        except AgiHangup as exc:
            log.info("FastAGI %s from %s: hangup: %s", _name(chan), peer, exc)
        except AgiError as exc:
            log.error("FastAGI %s from %s failed: %s", _name(chan), peer, exc)
        except TimeoutError:
            if not deadline.expired():
                log.exception("FastAGI %s from %s: route raised TimeoutError", _name(chan), peer)
            else:
                log.error(
                    "FastAGI %s from %s exceeded session_timeout %gs; closing",
                    _name(chan),
                    peer,
                    self._session_timeout,
                )
        except asyncio.CancelledError:
            log.info("FastAGI %s from %s cancelled (server stopping)", _name(chan), peer)
            raise
        except Exception:
            log.exception("FastAGI route failed for %s from %s", _name(chan), peer)
        finally:
            await _close(writer)

    async def _run_route(self, chan: AgiChannel, peer: str) -> None:
        route = self._routes.get(chan.script)
        if route is None:
            log.error(
                "FastAGI no route for %r (channel %s, peer %s); closing",
                chan.script,
                chan.channel or "?",
                peer,
            )
            return
        log.debug("FastAGI %s for channel %s from %s", chan.script, chan.channel, peer)
        result = route(chan)  # plain functions are accepted as well as coroutine functions
        if inspect.isawaitable(result):
            await result


def _name(chan: AgiChannel | None) -> str:
    if chan is None:
        return "session (no environment yet)"
    return f"{chan.script!r} for channel {chan.channel or '?'}"
