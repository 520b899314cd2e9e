"""A scripted AMI server: banner, login, a few actions, events and faults on demand.

It records every action it receives (from every connection), so tests can prove what the
client sent, and what it did not send again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def frame(fields: Mapping[str, str | list[str]]) -> bytes:
    lines: list[str] = []
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {item}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def channel_row(uid: str, name: str, state: str = "Up", duration: str = "00:00:10") -> dict:
    return {
        "Channel": name,
        "ChannelState": "6",
        "ChannelStateDesc": state,
        "CallerIDNum": "cell-0101",
        "CallerIDName": "<unknown>",
        "Context": "cells",
        "Exten": "07700900123",
        "Priority": "1",
        "Uniqueid": uid,
        "Linkedid": uid,
        "Application": "Dial",
        "Duration": duration,
    }


class ScriptedAmi:
    def __init__(self, username: str = "callcontrol", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.accept_login = True
        self.silent: set[str] = set()  # lower-case action names never answered
        self.channels: list[dict[str, str]] = []  # what CoreShowChannels lists
        self.modules = {"res_pjsip.so"}
        self.login_events: list[dict[str, str]] = []  # sent right after FullyBooted
        self.actions: list[dict[str, str]] = []  # every action received, in order
        self.connections = 0
        self.logins = 0
        self.login_attempts = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.get("Action", "").lower() == action.lower())

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket and every connection (an Asterisk restart)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop_connections()

    async def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def send_raw(self, data: bytes) -> None:
        for writer in list(self._writers):
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def send_event(self, fields: Mapping[str, str | list[str]]) -> None:
        await self.send_raw(frame(fields))

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        writer.write(BANNER)
        buf = b""
        try:
            while data := await reader.read(4096):
                buf += data
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    action = dict(
                        line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line
                    )
                    self.actions.append(action)
                    if not self._answer(action, writer):
                        return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        """Write the reply; False closes the connection."""
        name = action.get("Action", "").lower()
        aid = action.get("ActionID", "")
        if name in self.silent:
            return True
        if name == "login":
            self.login_attempts += 1
            ok = (
                self.accept_login
                and action.get("Username") == self.username
                and action.get("Secret") == self.secret
            )
            if not ok:  # Asterisk answers, then hangs up on a failed login
                writer.write(
                    frame(
                        {"Response": "Error", "ActionID": aid, "Message": "Authentication failed"}
                    )
                )
                return False
            self.logins += 1
            writer.write(
                frame(
                    {"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"}
                )
            )
            writer.write(
                frame(
                    {
                        "Event": "FullyBooted",
                        "Privilege": "system,all",
                        "Uptime": "10",
                        "LastReload": "10",
                        "Status": "Fully Booted",
                    }
                )
            )
            for event in self.login_events:
                writer.write(frame(event))
        elif name == "listcommands":  # what `asterisk check` asks: a few of Asterisk's
            names = ("Ping", "CoreShowChannels", "Hangup", "Originate", "ShowDialPlan", "Getvar")
            fields = {n: f"{n}.  Priv: call,all" for n in names}
            writer.write(frame({"Response": "Success", "ActionID": aid, **fields}))
        elif name == "showdialplan":
            writer.write(frame({"Response": "Success", "ActionID": aid, "Message": "Found"}))
        elif name == "getvar":
            writer.write(frame({"Response": "Success", "ActionID": aid, "Value": "set"}))
        elif name == "ping":
            writer.write(
                frame(
                    {
                        "Response": "Success",
                        "ActionID": aid,
                        "Ping": "Pong",
                        "Timestamp": "1700000000.000000",
                    }
                )
            )
        elif name == "command":
            out = [f"ran: {action.get('Command')}", "second line"]
            writer.write(
                frame(
                    {
                        "Response": "Success",
                        "ActionID": aid,
                        "Message": "Command output follows",
                        "Output": out,
                    }
                )
            )
        elif name == "reload":
            if action.get("Module") in self.modules:
                writer.write(
                    frame({"Response": "Success", "ActionID": aid, "Message": "Module Reloaded"})
                )
            else:
                writer.write(
                    frame({"Response": "Error", "ActionID": aid, "Message": "No such module"})
                )
        elif name == "hangup":
            known = any(c["Channel"] == action.get("Channel") for c in self.channels)
            writer.write(
                frame(
                    {
                        "Response": "Success" if known else "Error",
                        "ActionID": aid,
                        "Message": "Channel Hungup" if known else "No such channel",
                    }
                )
            )
        elif name == "coreshowchannels":
            writer.write(
                frame(
                    {
                        "Response": "Success",
                        "ActionID": aid,
                        "EventList": "start",
                        "Message": "Channels will follow",
                    }
                )
            )
            for row in self.channels:
                writer.write(frame({"Event": "CoreShowChannel", "ActionID": aid, **row}))
            writer.write(
                frame(
                    {
                        "Event": "CoreShowChannelsComplete",
                        "ActionID": aid,
                        "EventList": "Complete",
                        "ListItems": str(len(self.channels)),
                    }
                )
            )
        elif name == "originate":
            writer.write(
                frame(
                    {
                        "Response": "Success",
                        "ActionID": aid,
                        "Message": "Originate successfully queued",
                    }
                )
            )
            ok = action.get("Exten") != "busy"
            writer.write(
                frame(
                    {
                        "Event": "OriginateResponse",
                        "ActionID": aid,
                        "Response": "Success" if ok else "Failure",
                        "Channel": action.get("Channel", ""),
                        "Reason": "4" if ok else "5",
                        "Uniqueid": "1700000000.9",
                    }
                )
            )
        else:
            writer.write(
                frame({"Response": "Error", "ActionID": aid, "Message": "Invalid/unknown command"})
            )
        return True
