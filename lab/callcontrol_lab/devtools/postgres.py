"""A throw-away PostgreSQL cluster for the test suite and the benchmark.

From the Debian ``postgresql`` package's binaries (``/usr/lib/postgresql/*/bin``): a cluster in a
temporary folder, trust authentication, listening on 127.0.0.1 only, on a free port, run as the
postgres user when we are root. ``stop()`` stops it and removes the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_NOT_FOUND = (
    "PostgreSQL server binaries not found: install the postgresql package (make test does this)"
)
# The test suite trades durability for speed; the benchmark keeps PostgreSQL's defaults.
FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def pg_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl."""
    found = [
        d
        for d in Path("/usr/lib/postgresql").glob("*/bin")
        if (d / "initdb").exists() and (d / "pg_ctl").exists()
    ]
    found.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    return found[-1] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL cluster in a temporary folder, run as the postgres user when we are root."""

    def __init__(self, bindir: Path, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable
        self.as_root = os.geteuid() == 0
        # initdb and postgres refuse to run as root: then they run as the postgres user, in a
        # folder of /tmp (which, unlike root's own TMPDIR perhaps, that user can reach).
        user = pwd.getpwnam("postgres") if self.as_root else None
        self.root = Path(tempfile.mkdtemp(prefix="callcontrol-pg-", dir="/tmp" if user else None))
        if user is not None:
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = dict(os.environ, LC_ALL="C", LANG="C")
        return subprocess.run(
            cmd, capture_output=True, text=True, env=env, check=check, cwd=self.root, timeout=120
        )

    def _log_tail(self) -> str:
        try:
            return self.log.read_text()[-2000:]
        except OSError:
            return ""

    def start(self) -> None:
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"initdb failed: {e.stderr.strip() or e.stdout.strip()}") from e
        last = ""
        for _ in range(3):  # the free port may be taken between finding it and listening
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                + ("" if self.durable else FAST_OPTIONS + " ")
                + "-c max_connections=200"
            )
            result = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", options, "start", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return
            last = (result.stderr + result.stdout).strip() + "\n" + self._log_tail()
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
