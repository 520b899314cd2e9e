"""End to end: the real Asterisk lab, the daemon as a process, SIPp handsets, PostgreSQL.

The lab here is named "test" and uses its own ports, so it can run beside `make run`. Set
CALLCONTROL_TEST_LAB to name it otherwise: two suites can then share one Asterisk root, each in a
network namespace of its own (`ip netns exec NS make test`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from callcontrol.config import load_settings
from callcontrol_lab.lab import Lab
from callcontrol_lab.simulator import logs
from tests.conftest import create_pg_database, drop_pg_database

BIN = Path(sys.executable).parent
LAB_NAME = os.environ.get("CALLCONTROL_TEST_LAB", "test")
PORTS = {"pjsip": 5160, "ami": 5138, "agi": 4673, "pstn": 5170}
KIOSK_PORT = 8189  # the prisoners' kiosk (tests/e2e/test_kiosk.py)


class Daemon:
    """`callcontrol run` as a process of its own, as an operator runs it."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start the daemon (unless it runs), with extra settings from ``env`` if given."""
        if self.proc and self.proc.poll() is None:
            return
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = open(self.log, "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            [str(BIN / "callcontrol"), "run", "--config", str(self.config)],
            stdout=out,
            stderr=out,
            env={**os.environ, **(env or {})},
        )
        # Ready once it says so in its log (probing the port would be a bad AGI client).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon exited at start; see {self.log}:\n" + self.log.read_text()[-2000:]
                )
            if self.log.read_bytes()[offset:].count(b"FastAGI listening"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not start; see {self.log}")

    def restart(self, env: dict[str, str] | None = None) -> None:
        self.stop()
        self.start(env)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class E2E:
    def __init__(self, config: Path, db_url: str, daemon: Daemon, lab: Lab) -> None:
        self.config = config
        self.db_url = db_url
        self.daemon = daemon
        self.lab = lab

    def cli(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `callcontrol`; ``stdin`` is its standard input (a PIN for --pin-stdin)."""
        proc = subprocess.run(
            [str(BIN / "callcontrol"), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=60,
            input=stdin if stdin is not None else "",
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"callcontrol {' '.join(args)} failed: {proc.stderr}")
        return proc

    def lab_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `callcontrol-lab` (up, down, status) on this lab."""
        proc = subprocess.run(
            [str(BIN / "callcontrol-lab"), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"callcontrol-lab {' '.join(args)} failed: {proc.stderr}")
        return proc

    def call(
        self, cell: str, pin: str, dial: str, hold: float = 2.0, *extra: str
    ) -> dict[str, object]:
        args = [
            str(BIN / "callcontrol-sim"),
            "call",
            "--cell",
            cell,
            "--pin",
            pin,
            "--dial",
            dial,
            "--hold",
            str(hold),
            "--config",
            str(self.config),
            "--port",
            str(PORTS["pjsip"]),
            "--called-party-port",
            str(PORTS["pstn"]),
            *extra,
        ]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"callcontrol-sim failed: {proc.stderr}\n{proc.stdout}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def sql(self, query: str, *params: object) -> list[asyncpg.Record]:
        """Read the daemon's records straight from PostgreSQL ($1-style parameters)."""

        async def fetch() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(_plain(self.db_url))
            try:
                return await conn.fetch(query, *params)
            finally:
                await conn.close()

        return asyncio.run(fetch())


def kept_handset_log(call: dict[str, object]) -> logs.HandsetLog:
    """The handset's side of a call placed with ``--keep``, as its SIPp logged it (times from
    SIPp's clock); the kept run folder is removed."""
    run = Path(str(call["run_dir"]))
    try:
        events = logs.parse_events((run / "handset_logs.log").read_text())
    finally:
        shutil.rmtree(run, ignore_errors=True)
    return logs.handset_calls(events)[str(call["sip_call_id"])]


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def e2e_database(pg_url: str) -> Iterator[str]:
    """A database of its own for the end-to-end session, at the latest schema."""
    url = create_pg_database(pg_url)
    yield url
    drop_pg_database(pg_url, url)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory, e2e_database: str) -> Iterator[E2E]:
    base = tmp_path_factory.mktemp("e2e")
    config = base / "callcontrol.toml"
    config.write_text(f"""
base_dir = "{base}"
[database]
url = "{e2e_database}"
[security]
pin_secret = "e2e-secret-{uuid.uuid4().hex}"
[lab]
name = "{LAB_NAME}"
enabled = true
[agi]
port = {PORTS["agi"]}
session_timeout_s = 20
[ami]
port = {PORTS["ami"]}
reconnect_s = 0.5
[asterisk]
pjsip_port = {PORTS["pjsip"]}
pstn_port = {PORTS["pstn"]}
ring_timeout_s = 10
rtp_start = 25000
rtp_end = 29999
officers_port = 5190
[billing]
accept_timeout_s = 6
[http]
port = 8188
tokens_file = "{base}/api-tokens"
[kiosk]
enabled = true
port = {KIOSK_PORT}
[recording]
store_dir = "{base}/recordings"
""")
    os.environ.pop("CALLCONTROL_CONFIG", None)
    lab = Lab(load_settings(config))
    lab.write_settings(config, config)  # the lab's journal, spool, cells' file, asterisk command
    lab.down()
    # A fresh database: what earlier runs left in the test lab's spool and journal is void.
    for leftover in lab.recordings_spool.glob("*.raw"):
        leftover.unlink()
    if lab.journal_path.exists():
        lab.journal_path.write_text("")
    for moved in lab.journal_path.parent.glob(lab.journal_path.name + ".*"):  # rotated before
        moved.unlink()
    lab.up()
    daemon = Daemon(config, base / "daemon.log")
    daemon.start()
    try:
        yield E2E(config, e2e_database, daemon, lab)
    finally:
        daemon.stop()
        lab.down()
        log = base / "daemon.log"
        if log.exists():
            print(f"\n--- daemon log ({log}) ---\n" + log.read_text()[-4000:])


# The staff console's browser fixtures (console, chromium, driver): tests/e2e/browser.py.
from tests.e2e.browser import chromium, console, driver  # noqa: E402, F401
