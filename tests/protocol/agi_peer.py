"""A scripted Asterisk side of FastAGI: connects, sends an environment, answers commands."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from callcontrol.adapters.agi.server import FastAgiServer

CHANNEL = "PJSIP/cell-0101-00000001"
UNIQUEID = "1700000000.1"
# The FastAGI secret the test servers are given, and the scripted Asterisk presents.
SECRET = "5ec2e7" * 8


def env_bytes(
    script: str = "cell-call",
    args: Sequence[str] = ("cell-0101", "07700900123", "abc@10.0.0.1"),
    *,
    eol: str = "\n",
    secret: str | None = SECRET,
    extra: Sequence[str] = (),
) -> bytes:
    """The environment Asterisk sends for AGI(agi://127.0.0.1/<secret>/<script>,<args>).

    ``secret`` None: a URL without it. ``extra``: more lines, after the arguments.
    """
    path = script if secret is None else f"{secret}/{script}"
    lines = [
        "agi_network: yes",
        f"agi_network_script: {path}",
        f"agi_request: agi://127.0.0.1/{path}",
        f"agi_channel: {CHANNEL}",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {UNIQUEID}",
        "agi_callerid: cell-0101",
        "agi_calleridname: unknown",
        "agi_context: cells",
        "agi_extension: 07700900123",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
    ]
    lines += [f"agi_arg_{i}: {value}" for i, value in enumerate(args, start=1)]
    lines += extra
    return (eol.join(lines) + eol + eol).encode()


class ScriptedAsterisk:
    opened: list[ScriptedAsterisk] = []  # closed by the tests' fixtures (close_all)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.commands: list[str] = []
        self.opened.append(self)

    @classmethod
    async def close_all(cls) -> None:
        while cls.opened:
            peer = cls.opened.pop()
            peer.writer.close()
            with contextlib.suppress(Exception):
                await peer.writer.wait_closed()

    @classmethod
    async def connect(cls, port: int, source: str | None = None) -> ScriptedAsterisk:
        """Connect to 127.0.0.1:``port``, from the address ``source`` if given (127.0.0.2...)."""
        local = None if source is None else (source, 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_env(self, script: str = "cell-call", **kwargs: object) -> None:
        await self.send(env_bytes(script, **kwargs))  # type: ignore[arg-type]

    async def command(self, within: float = 2.0) -> str:
        """The next command the server sent (EOFError if it closed instead)."""
        line = await asyncio.wait_for(self.reader.readline(), within)
        if not line:
            raise EOFError("server closed the connection")
        text = line.decode().rstrip("\n")
        self.commands.append(text)
        return text

    async def reply(self, *lines: str) -> None:
        await self.send(("\n".join(lines) + "\n").encode())

    async def expect_eof(self, within: float = 2.0) -> bytes:
        """Everything the server still sends before closing; fails if it does not close."""
        try:
            return await asyncio.wait_for(self.reader.read(), within)
        except ConnectionResetError:
            return b""

    def close(self) -> None:
        self.writer.close()


MakeServer = Callable[..., Awaitable[FastAgiServer]]


@contextlib.asynccontextmanager
async def fastagi_servers(read_timeout: float, session_timeout: float) -> AsyncIterator[MakeServer]:
    """Make FastAGI servers on free ports (with SECRET and these timeouts unless a test says
    otherwise); every one is stopped, and every scripted Asterisk closed, at the end."""
    servers: list[FastAgiServer] = []

    async def make(routes: dict[str, Any], **kwargs: Any) -> FastAgiServer:
        kwargs.setdefault("read_timeout", read_timeout)
        kwargs.setdefault("session_timeout", session_timeout)
        kwargs.setdefault("secret", SECRET)
        server = FastAgiServer(routes, "127.0.0.1", 0, **kwargs)
        await server.start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            await server.stop()
        await ScriptedAsterisk.close_all()
