"""Every AMI message an account receives, raw: what Asterisk actually sends it, byte for byte.

A plain TCP reader (no panoramisk) so that nothing is dropped or merged on the way: each message
is kept with its size on the wire. Used to see which events the daemon's account gets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

_EOM = b"\r\n\r\n"


@dataclass
class Message:
    headers: dict[str, str]
    size: int  # bytes on the wire, the blank line included

    @property
    def event(self) -> str:
        return self.headers.get("Event", "")


@dataclass
class RawAmi:
    host: str
    port: int
    username: str
    secret: str
    messages: list[Message] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, log in (Events: on) and collect in the background; raises if refused."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        await self._reader.readline()  # the banner
        login = f"Action: Login\r\nUsername: {self.username}\r\nSecret: {self.secret}\r\n"
        self._writer.write(f"{login}Events: on\r\nActionID: login\r\n\r\n".encode())
        reply = await asyncio.wait_for(self._read_one(), 10)
        if reply is None or reply.headers.get("Response") != "Success":
            raise AssertionError(f"AMI login as {self.username} refused: {reply}")
        self._task = asyncio.create_task(self._collect())

    async def _read_one(self) -> Message | None:
        assert self._reader is not None
        try:
            raw = await self._reader.readuntil(_EOM)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        headers: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep and name not in headers:
                headers[name] = value.strip()
        return Message(headers, len(raw))

    async def _collect(self) -> None:
        while (message := await self._read_one()) is not None:
            self.messages.append(message)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    def events(self) -> list[Message]:
        return [m for m in self.messages if m.event]

    def counts(self) -> Counter[str]:
        return Counter(m.event for m in self.events())

    def bytes(self) -> int:
        return sum(m.size for m in self.events())
