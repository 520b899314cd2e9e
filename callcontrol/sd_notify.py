"""systemd's notification protocol (sd_notify(3)), without a dependency.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET``: a Unix datagram socket, a path or, when
it starts with ``@``, a name in the abstract namespace. Each message is one datagram of
``KEY=VALUE`` lines: ``READY=1`` (the daemon serves: systemd's start job ends), ``STATUS=...``
(shown by ``systemctl status``), ``STOPPING=1``, and ``WATCHDOG=1`` (alive; under
``WatchdogSec=`` systemd passes ``WATCHDOG_USEC`` and restarts a daemon that stays silent that
long).

Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing. A notification that cannot be
sent is logged once and otherwise ignored: it must never stop the daemon deciding calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("callcontrol.systemd")


def _address(value: str) -> str | bytes | None:
    """The socket address in NOTIFY_SOCKET: a path, or an abstract name ('@' becomes NUL)."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock addresses and relative paths: not ours to guess at


class Notifier:
    """Sends notifications to the socket named in the environment (``NOTIFY_SOCKET``)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = _address(raw) if raw else None
        if raw and self.address is None:
            log.warning("NOTIFY_SOCKET=%r is not a path or an abstract name: ignored", raw)
        self.watchdog_s = _watchdog_s(env)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> bool:
        """Send one message (``notify(READY="1", STATUS="...")``); True when it was sent."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError as e:
            if not self._warned:
                log.warning("could not notify systemd at NOTIFY_SOCKET: %s", e)
                self._warned = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.notify(STATUS=status)

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(STOPPING="1", STATUS=status)

    async def keep_alive(self) -> None:
        """Send WATCHDOG=1 at half the watchdog interval until cancelled: proof that the event
        loop still runs. Returns at once when systemd set no watchdog."""
        if self.watchdog_s is None or self.address is None:
            return
        while True:
            self.notify(WATCHDOG="1")
            await asyncio.sleep(self.watchdog_s / 2)


def _watchdog_s(env: Mapping[str, str]) -> float | None:
    """The watchdog interval systemd set for this process, in seconds, or None."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (we were started by one that was watched)
    return int(usec) / 1_000_000


def _one_line(value: str) -> str:
    return " ".join(str(value).split())
