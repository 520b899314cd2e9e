"""`callcontrol run` as a child process on a SQLite database of its own, beside the scripted
AMI and FastAGI peers: for the tests of what the daemon tells systemd, Prometheus and its log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from callcontrol.adapters.agi.secret import create_secret_file, read_secret_file
from callcontrol.adapters.db.engine import make_engine, session_factory, upgrade
from callcontrol.operator_services import session_services
from tests.conftest import TESTER

BIN = Path(sys.executable).parent
AMI_SECRET = "s3cret"  # ScriptedAmi's
PIN_SECRET = "protocol-pin-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment without the caller's callcontrol settings or systemd's variables."""
    drop = ("CALLCONTROL_", "NOTIFY_SOCKET", "WATCHDOG_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def write_config(base: Path, ami_port: int, extra: str = "") -> Path:
    """A site outside the lab: its own SQLite, secrets in files, journal and spool in ``base``."""
    config = base / "callcontrol.toml"
    config.write_text(f"""
base_dir = "{base}"
[database]
url = "sqlite+aiosqlite:///{base}/cc.sqlite3"
[security]
pin_secret = "{PIN_SECRET}"
[agi]
port = {free_port()}
[http]
port = {free_port()}
[ami]
port = {ami_port}
secret = "{AMI_SECRET}"
reconnect_s = 0.2
[asterisk]
journal_file = "{base}/journal"
cells_conf = "{base}/pjsip_cells.conf"
reload_cells = "none"
[recording]
spool_dir = "{base}/spool"
store_dir = "{base}/recordings"
{extra}
""")
    (base / "spool").mkdir(exist_ok=True)
    create_secret_file(base / "var/agi-secret")
    return config


async def prepare_database(base: Path, cells: dict[str, tuple[str, str]] | None = None) -> None:
    """The config's SQLite at the latest schema, with ``cells``: {cell: (prison number, PIN)}."""
    url = f"sqlite+aiosqlite:///{base}/cc.sqlite3"
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with session_factory(engine)() as s:
            ops = session_services(s, pin_keys=lambda: PIN_SECRET.encode())
            for cell, (number, pin) in (cells or {}).items():
                await ops.cells.add(TESTER, cell)
                await ops.prisoners.add(TESTER, number, "Test Prisoner", pin, cell)
            await s.commit()
    finally:
        await engine.dispose()


@dataclass
class RunningDaemon:
    proc: asyncio.subprocess.Process
    config: Path
    lines: list[str] = field(default_factory=list)  # its stderr so far, line by line
    _reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    async def wait_for_line(self, pattern: str, within: float = 20.0) -> re.Match[str]:
        """The first line matching ``pattern`` (a regular expression), waiting for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError(
                    f"no line matching {pattern!r}; the daemon said:\n" + "\n".join(self.lines)
                )
            await asyncio.sleep(0.02)

    @property
    def secret(self) -> str:
        return read_secret_file(self.config.parent / "var/agi-secret")


@contextlib.asynccontextmanager
async def running_daemon(
    config: Path, env: dict[str, str] | None = None, *args: str
) -> AsyncIterator[RunningDaemon]:
    """`callcontrol run` until the block ends (SIGTERM, then SIGKILL after 10 s)."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "callcontrol"),
        "run",
        "--config",
        str(config),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**clean_env(), **(env or {})},
    )
    daemon = RunningDaemon(proc, config)
    daemon._reader = asyncio.create_task(daemon._read())
    try:
        yield daemon
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await daemon._reader
