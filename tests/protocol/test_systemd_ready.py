"""`callcontrol run` under Type=notify: READY=1 only once FastAGI listens, AMI is logged in and
the database is current; STATUS= says what it waits for; STOPPING=1 at SIGTERM.

The daemon is a real child process given NOTIFY_SOCKET, as systemd would; the test binds that
datagram socket (in the abstract namespace, '@...', as systemd does) and plays Asterisk's AMI
with the scripted peer, which is not there at first.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import uuid
from pathlib import Path

import aiohttp

from .ami_peer import ScriptedAmi
from .daemon_proc import free_port, prepare_database, running_daemon, write_config


class NotifySocket:
    """systemd's side: a bound datagram socket; every message received, parsed."""

    def __init__(self) -> None:
        self.name = f"@callcontrol-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                raw = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in raw.decode().splitlines()))

    async def wait_for(self, key: str, within: float) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            for message in self.drain():
                if key in message:
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {key} within {within}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


async def test_ready_only_once_ami_logs_in_then_stopping(tmp_path: Path) -> None:
    ami_port = free_port()  # nobody listens there yet: Asterisk is "down"
    config = write_config(tmp_path, ami_port)
    await prepare_database(tmp_path)
    notify = NotifySocket()
    ami = ScriptedAmi()
    ami.port = ami_port
    try:
        async with running_daemon(config, {"NOTIFY_SOCKET": notify.name}) as daemon:
            agi = await daemon.wait_for_line(r"FastAGI listening on [\d.]+:(\d+)")
            http = await daemon.wait_for_line(r"supervision API listening on (http://\S+)")
            # FastAGI and the database are up; AMI is not: a status saying so, and no READY.
            status = await notify.wait_for("STATUS", within=10)
            assert status["STATUS"].startswith("waiting: AMI 127.0.0.1:")
            assert "not logged in" in status["STATUS"] and "FastAGI" not in status["STATUS"]
            async with aiohttp.ClientSession() as web:
                async with web.get(f"{http[1]}/ready") as r:
                    assert r.status == 503
                    assert await r.json() == {"ready": False, "agi": True, "ami": False, "db": True}
            await asyncio.sleep(1.5)  # several of the daemon's readiness looks, and reconnects
            assert not any("READY" in m for m in notify.drain()), notify.messages
            # Asterisk comes up: the login is accepted, and only then READY=1 (with a status).
            await ami.start()
            ready = await notify.wait_for("READY", within=10)
            assert ami.logins >= 1
            assert ready["READY"] == "1"
            assert ready["STATUS"] == (
                f"deciding calls: FastAGI on 127.0.0.1:{agi[1]}, AMI 127.0.0.1:{ami_port} "
                "logged in, database current"
            )
            # At READY the FastAGI port takes connections and /ready agrees.
            _, writer = await asyncio.open_connection("127.0.0.1", int(agi[1]))
            writer.close()
            async with aiohttp.ClientSession() as web:
                async with web.get(f"{http[1]}/ready") as r:
                    assert (r.status, (await r.json())["ready"]) == (200, True)
            # Asterisk goes away: the status says so (READY is never sent twice).
            await ami.stop()
            lost = await _wait_status(notify, "waiting: AMI", within=10)
            assert "not logged in" in lost
            daemon.proc.send_signal(signal.SIGTERM)
            stopping = await notify.wait_for("STOPPING", within=10)
            assert stopping["STOPPING"] == "1"
            assert await asyncio.wait_for(daemon.proc.wait(), 10) == 0
        assert sum("READY" in m for m in notify.drain()) == 1
    finally:
        await ami.stop()
        notify.close()


async def _wait_status(notify: NotifySocket, prefix: str, within: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen = len(notify.drain())
    while loop.time() < deadline:
        for m in notify.drain()[seen:]:
            if m.get("STATUS", "").startswith(prefix):
                return m["STATUS"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no STATUS {prefix!r}: {json.dumps(notify.messages)}")
