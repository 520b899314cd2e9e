"""The SIPp processes of the simulator and the load runner: start one with its screen output in a
file, wait for it, stop it (SIGUSR1, SIGINT, SIGKILL), wait until a called party has bound its
port, and read its files (their tail, the first line of each error)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import signal
import socket
import time
from pathlib import Path

from callcontrol_lab.simulator.sipp import SimError


def port_in_use(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise SimError(f"cannot check UDP port {ip}:{port}: {e.strerror}") from None
    return False


def _output_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


async def start(cmd: list[str], out: Path) -> asyncio.subprocess.Process:
    """Start a SIPp with its screen output going to ``out``."""
    fd = _output_file(out)
    try:
        return await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=asyncio.subprocess.STDOUT
        )
    except OSError as e:
        raise SimError(f"cannot run {cmd[0]}: {e.strerror}") from None
    finally:
        os.close(fd)


async def wait(proc: asyncio.subprocess.Process, limit_s: float) -> int | None:
    """The exit status, or None if the process is still running after ``limit_s``."""
    try:
        return await asyncio.wait_for(proc.wait(), limit_s)
    except TimeoutError:
        return None


async def stop(proc: asyncio.subprocess.Process) -> int | None:
    """Stop a SIPp: SIGUSR1 (SIPp 3.8 then ends its calls with a BYE or CANCEL, so that no call
    is left on Asterisk, and exits), then SIGINT, then SIGKILL."""
    if proc.returncode is not None:
        return proc.returncode
    for sig, grace in ((signal.SIGUSR1, 2.0), (signal.SIGINT, 2.0), (signal.SIGKILL, 3.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        code = await wait(proc, grace)
        if code is not None:
            return code
    return proc.returncode


async def until_listening(
    proc: asyncio.subprocess.Process, ip: str, port: int, out: Path, limit_s: float = 10.0
) -> None:
    """Wait until the called party's SIPp has bound its port (ours can no longer bind it)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise SimError(f"the called party's SIPp exited at once: {tail(out)}")
        if port_in_use(ip, port):
            return
        await asyncio.sleep(0.05)
    raise SimError(f"the called party's SIPp did not open {ip}:{port} in {limit_s:.0f} s")


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail(path: Path) -> str:
    text = " ".join(read(path).split())
    return text[-300:] if text else "(no output)"


def errors(path: Path) -> list[str]:
    """The first line of each event in a SIPp error log."""
    out = []
    for line in read(path).splitlines():
        m = re.match(r"^\d{4}-\d\d-\d\d\s+[\d:.]+\s+[\d.]+:\s*(.*)$", line)
        if m:
            out.append(m.group(1)[:200])
    return out
