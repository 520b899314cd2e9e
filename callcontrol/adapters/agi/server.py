"""A bounded FastAGI server: one task per Asterisk connection, routed by agi_network_script.

A connection is first a handshake: its address must be in ``allowed_peers``, its whole
environment must arrive within ``handshake_timeout`` and it must present the shared secret as
the first segment of the script (``agi_network_script: <secret>/<route>``). Handshakes have a
pool of their own, ``max_sessions_per_peer`` per address and ``max_handshakes`` in all; when a
pool is full the oldest handshake in it is closed to make room, so idle sockets can delay a
real request by at most one handshake, never lock it out. Only then is a connection a session,
counted against ``max_sessions`` and bounded by ``session_timeout``, each reply by
``read_timeout``. Whatever goes wrong, the socket is closed; Asterisk then carries on with the
dialplan, which fails closed because the route never set its result variable.

Refusals are logged one line each, with the peer and why, rate-limited (see refusals.py). No
line holds the secret, ``agi_request`` or the raw ``agi_network_script``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from callcontrol.adapters.agi.peers import DEFAULT_ALLOWED_PEERS, AllowedPeers, peer_of
from callcontrol.adapters.agi.protocol import (
    ENV_MAX_BYTES,
    AgiChannel,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    read_environment,
)
from callcontrol.adapters.agi.refusals import RefusalLog
from callcontrol.adapters.agi.secret import SECRET_FORMAT
from callcontrol.logging_setup import bind_call

Route = Callable[[AgiChannel], Awaitable[None] | None]

log = logging.getLogger("callcontrol.agi")

_CLOSE_WAIT_S = 1.0
_STREAM_LIMIT = 65536


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), _CLOSE_WAIT_S)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once, without waiting for anything to be sent or read."""
    writer.transport.abort()


@dataclass(eq=False)
class _Conn:
    address: str  # the peer: its address alone (Asterisk connects from ephemeral ports)
    shown: str  # address:port, for the log
    writer: asyncio.StreamWriter
    evicted: bool = False


class FastAgiServer:
    def __init__(
        self,
        routes: Mapping[str, Route],
        host: str,
        port: int,
        *,
        secret: str,
        allowed_peers: Iterable[str] = DEFAULT_ALLOWED_PEERS,
        read_timeout: float = 20.0,
        session_timeout: float = 60.0,
        handshake_timeout: float = 2.0,
        max_sessions: int = 500,
        max_sessions_per_peer: int = 64,
        max_handshakes: int = 256,
        max_env_bytes: int = ENV_MAX_BYTES,
    ) -> None:
        if not SECRET_FORMAT.fullmatch(secret):
            raise ValueError("FastAGI secret: at least 32 letters, digits, '_' or '-'")
        if min(max_sessions, max_sessions_per_peer, max_handshakes) < 1:
            raise ValueError("FastAGI session limits must be at least 1")
        self._routes = {name.lstrip("/"): route for name, route in routes.items()}
        self._host = host
        self._port = port
        self._secret = secret
        self._allowed = AllowedPeers(allowed_peers)
        self._read_timeout = read_timeout
        self._session_timeout = session_timeout
        self._handshake_timeout = handshake_timeout
        self._max_sessions = max_sessions
        self._max_per_peer = max_sessions_per_peer
        self._max_handshakes = max_handshakes
        self._max_env_bytes = max_env_bytes
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._active: set[_Conn] = set()  # past the handshake: running a route
        self._pending: dict[_Conn, None] = {}  # handshakes, oldest first
        self._pending_by_peer: dict[str, dict[_Conn, None]] = {}
        self._refusals = RefusalLog(log)

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def listening(self) -> bool:
        """Started and not stopped: accepting connections."""
        return self._server is not None and self._server.is_serving()

    @property
    def active_sessions(self) -> int:
        """Connections open: handshakes and sessions."""
        return len(self._sessions)

    @property
    def handshakes(self) -> int:
        """Connections that have not yet presented their environment and the secret."""
        return len(self._pending)

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
        self._refusals.flush()

    # --- admission --------------------------------------------------------------------------
    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # stopping
            _abort(writer)
            return
        address, shown = peer_of(writer.get_extra_info("peername"))
        if not self._allowed.allows(address):
            self._refusals.refused(
                "peer not allowed",
                "FastAGI refused connection from %s: not in [agi] allowed_peers",
                shown,
            )
            _abort(writer)
            return
        if len(self._active) >= self._max_sessions:
            self._refusals.refused(
                "max_sessions",
                "FastAGI refused connection from %s: %d sessions active (max_sessions=%d)",
                shown,
                len(self._active),
                self._max_sessions,
            )
            _abort(writer)
            return
        mine = self._pending_by_peer.get(address, {})
        if len(mine) >= self._max_per_peer:
            self._evict(next(iter(mine)), f"max_sessions_per_peer={self._max_per_peer}")
        if len(self._pending) >= self._max_handshakes:
            self._evict(next(iter(self._pending)), f"max_handshakes={self._max_handshakes}")
        conn = _Conn(address, shown, writer)
        self._pending[conn] = None
        self._pending_by_peer.setdefault(address, {})[conn] = None
        task = asyncio.create_task(self._session(reader, writer, conn))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    def _evict(self, conn: _Conn, limit: str) -> None:
        """Close the oldest handshake of a full pool: make room for the new connection."""
        self._refusals.refused(
            "handshake pool full",
            "FastAGI closed connection from %s: no environment and secret yet, and the "
            "handshakes are full (%s); the oldest is closed to make room",
            conn.shown,
            limit,
        )
        conn.evicted = True
        self._unpend(conn)
        _abort(conn.writer)

    def _unpend(self, conn: _Conn) -> None:
        self._pending.pop(conn, None)
        mine = self._pending_by_peer.get(conn.address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self._pending_by_peer[conn.address]

    async def _handshake(self, reader: asyncio.StreamReader, conn: _Conn) -> dict[str, str] | None:
        """The environment, checked and with the secret taken out; None when refused."""
        try:
            env = await read_environment(reader, self._handshake_timeout, self._max_env_bytes)
        except AgiProtocolError as exc:
            if not conn.evicted:  # an evicted one is logged already
                self._refusals.refused(
                    "bad handshake",
                    "FastAGI refused connection from %s: protocol error: %s",
                    conn.shown,
                    exc,
                )
            return None
        finally:
            self._unpend(conn)
        if conn.evicted:  # its socket is closed already, though its environment had come
            return None
        script = env.get("agi_network_script", "").lstrip("/")
        given, slash, route = script.partition("/")
        # Compared in constant time, so the answer's timing tells nothing of the secret.
        good = hmac.compare_digest(given.encode(), self._secret.encode())
        if not (slash and good):
            known = route if route in self._routes else given if given in self._routes else "?"
            self._refusals.refused(
                "bad secret",
                "FastAGI refused request from %s (channel %s, route %s): %s",
                conn.shown,
                env.get("agi_channel", "?")[:80] or "?",
                known,
                "wrong secret" if slash else "no secret",
            )
            return None
        env["agi_network_script"] = route
        if "agi_request" in env:
            env["agi_request"] = env["agi_request"].replace(self._secret, "***")
        if len(self._active) >= self._max_sessions:
            self._refusals.refused(
                "max_sessions",
                "FastAGI refused request from %s: %d sessions active (max_sessions=%d)",
                conn.shown,
                len(self._active),
                self._max_sessions,
            )
            return None
        return env

    # --- sessions ---------------------------------------------------------------------------
    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn
    ) -> None:
        peer = conn.shown
        chan: AgiChannel | None = None
        deadline = asyncio.timeout(self._session_timeout)
        try:
            env = await self._handshake(reader, conn)
            if env is None:
                return
            self._active.add(conn)
            async with deadline:
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
            self._unpend(conn)
            self._active.discard(conn)
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
        # Every line logged for this request names its call: the one the route says it is
        # about (call_of: the handset's, from the arguments), else the requesting channel's.
        call_of = getattr(route, "call_of", None)
        bind_call((call_of(chan) if call_of else None) or chan.env.get("agi_uniqueid"))
        log.debug("FastAGI %s for channel %s from %s", chan.script, chan.channel, peer)
        result = route(chan)  # plain functions are accepted as well as coroutine functions
        if inspect.isawaitable(result):
            await result


def _name(chan: AgiChannel | None) -> str:
    if chan is None:
        return "session (no environment yet)"
    return f"{chan.script!r} for channel {chan.channel or '?'}"
