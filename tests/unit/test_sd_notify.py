"""sd_notify without systemd: the datagrams a Notifier sends, and readiness's three conditions."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import pytest

from callcontrol.readiness import Readiness
from callcontrol.sd_notify import Notifier


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_a_path_socket_gets_one_datagram_per_notification(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)) as sock:
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        assert n.enabled and n.watchdog_s is None
        assert n.ready("deciding\ncalls")  # a status is one line: no injected KEY=VALUE
        assert sock.recv(4096) == b"READY=1\nSTATUS=deciding calls"
        assert n.stopping()
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_an_abstract_socket_is_named_with_at() -> None:
    name = f"callcontrol-unit-{uuid.uuid4().hex}"
    with _receiver(b"\0" + name.encode()) as sock:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("waiting")
        assert sock.recv(4096) == b"STATUS=waiting"


def test_without_systemd_or_with_a_gone_socket_nothing_fails(tmp_path: Path) -> None:
    assert not Notifier({}).enabled
    assert Notifier({}).ready("x") is False
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled is False
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert gone.ready("x") is False  # logged once, never raised


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # another process's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier({"NOTIFY_SOCKET": "@x", **env}).watchdog_s == expected


async def test_watchdog_pings_at_half_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)) as sock:
        sock.setblocking(False)
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"})
        task = asyncio.create_task(n.keep_alive())
        await asyncio.sleep(0.35)
        task.cancel()
        pings = []
        while True:
            try:
                pings.append(sock.recv(64))
            except BlockingIOError:
                break
        assert pings and set(pings) == {b"WATCHDOG=1"} and 2 <= len(pings) <= 5


async def test_ready_needs_all_three_and_is_sent_once(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    up = {"agi": True, "ami": True, "db": "schema at 0007, not 0008"}

    async def db() -> str:
        return str(up["db"])

    readiness = Readiness(lambda: bool(up["agi"]), lambda: bool(up["ami"]), db, db_check_s=0)
    with _receiver(str(path)) as sock:
        stop = asyncio.Event()
        task = asyncio.create_task(
            readiness.notify_systemd(Notifier({"NOTIFY_SOCKET": str(path)}), "a:1", "b:2", stop)
        )
        first = (await asyncio.to_thread(sock.recv, 4096)).decode()
        assert first == "STATUS=waiting: database not ready (schema at 0007, not 0008)"
        assert not readiness.became_ready.is_set()
        up["db"] = ""
        await asyncio.wait_for(readiness.became_ready.wait(), 2)
        ready = await asyncio.to_thread(sock.recv, 4096)
        assert ready.decode().startswith("READY=1\nSTATUS=deciding calls: FastAGI on a:1")
        stop.set()
        await task
