"""The Asterisk lab: Asterisk 22 running callcontrol's rendered configuration.

The configuration is rendered by the product's own code (callcontrol/adapters/asterisk/
render.py, what `callcontrol asterisk render` writes), with the lab's folders, its chroot and
its dialplan (the benchmark's contexts) as overrides: one way to render, not two.

Asterisk comes from the PATH when a recent one is there (20 or newer), otherwise from a Debian
sid root built once by build-root.sh into a cache folder outside the repository (Debian 12 has
no asterisk package). Everything binds to 127.0.0.1. Several labs can share one root: each has a
name, and its own configuration, run, spool and log folders.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.secret import AgiSecretError, load_secret
from callcontrol.adapters.asterisk import render as rendering
from callcontrol.adapters.asterisk.pjsip_cells import CELLS_CONF
from callcontrol.config import Settings

log = logging.getLogger("callcontrol_lab")

BUILD_SCRIPT = Path(__file__).with_name("build-root.sh")
# The lab's own dialplan (the benchmark's contexts), rendered beside the product's.
LAB_DIALPLAN_SOURCE = Path(__file__).with_name("data") / "dialplan"
MIN_ASTERISK = 20
# The dialplan context of the cell handsets' endpoints, and who decides their calls: by default
# dialplan/cells.conf asking the daemon over FastAGI. The benchmark switches both (see `switch`).
DEFAULT_CELLS_CONTEXT = "cells"
_CONTEXT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# An AGI() script: an agi:// URL or a path. Nothing that the dialplan would read as an argument
# separator, a comment, an expression or a variable.
_AGI_TARGET = re.compile(r"[A-Za-z0-9_./:@+-]{1,255}")
# Rendered files hold the FastAGI secret (extensions.conf) and the AMI's (manager.conf), and
# Asterisk's log the URLs it ran AGI() with: for Asterisk's user and group only.
PRIVATE_DIR = 0o750
# An AMI account of the lab's own for tests that watch what Asterisk does (ChanSpyStart,
# MixMonitorStart): read call and reporting, no write, no eventfilter. The daemon's account
# receives only the events the daemon uses (manager.conf's eventfilter), so it cannot watch
# those. Never in the product's manager.conf; its secret is random, in the lab's lib folder
# (0600).
OBSERVER_USER = "lab-observer"
OBSERVER_ACCOUNT = """
; The lab's own watcher (callcontrol_lab/lab.py OBSERVER_USER): every event of the daemon's
; read classes, no filter; sends nothing.
[{user}]
secret = {secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = call,reporting
"""


class LabError(Exception):
    """The lab could not be set up, started or stopped; the message says why."""


@dataclass(frozen=True)
class LabStatus:
    name: str
    running: bool
    pid: int | None
    version: str
    root: str
    conf_dir: str
    log_file: str
    ami: str
    pjsip: str
    agi: str
    pstn: str

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def _asterisk_version(cmd: list[str]) -> tuple[int, str] | None:
    try:
        out = subprocess.run(cmd + ["-V"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Asterisk (\d+)\.", out)
    return (int(m.group(1)), out.strip()) if m else None


def _checked_context(name: str) -> str:
    if not _CONTEXT_NAME.fullmatch(name):
        raise LabError(f"cells context {name!r}: use letters, digits, '-' or '_'")
    return name


def _checked_agi(target: str) -> str:
    if not _AGI_TARGET.fullmatch(target):
        raise LabError(
            f"decision AGI {target!r}: an agi:// URL or a path, without spaces, commas, "
            "semicolons or variables"
        )
    return target


class Lab:
    """One named lab. ``cells_context`` is the dialplan context of the cell handsets' endpoints;
    ``decide_agi`` the AGI() that decides their calls in the cells context (None: the daemon's
    FastAGI route). Both only matter to the benchmark; their defaults are the production set-up.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        cells_context: str = DEFAULT_CELLS_CONTEXT,
        decide_agi: str | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.lab.name
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", self.name):
            raise LabError(f"lab name {self.name!r}: use letters, digits, '-' or '_'")
        self.tag = f"callcontrol-lab-{self.name}"
        self.root = self._choose_root()
        self.cells_context = _checked_context(cells_context)
        self.decide_agi = None if decide_agi is None else _checked_agi(decide_agi)
        self._agi_secret: str | None = None

    # --- where things are -------------------------------------------------------------------
    def _choose_root(self) -> Path:
        choice = self.settings.lab.use_system_asterisk
        if choice != "no" and shutil.which("asterisk"):
            found = _asterisk_version(["asterisk"])
            if found and found[0] >= MIN_ASTERISK:
                return Path("/")
            if choice == "yes":
                raise LabError(f"asterisk on the PATH is too old or broken (need {MIN_ASTERISK}+)")
        elif choice == "yes":
            raise LabError("use_system_asterisk=yes but there is no asterisk on the PATH")
        return self.settings.path(self.settings.lab.root)

    @property
    def chrooted(self) -> bool:
        return self.root != Path("/")

    def inside(self, path: str) -> Path:
        """A path as Asterisk sees it, made into a path on the host."""
        return self.root / path.lstrip("/")

    @property
    def conf_dir(self) -> str:
        return f"/etc/{self.tag}"

    @property
    def log_dir(self) -> str:
        return f"/var/log/{self.tag}"

    @property
    def run_dir(self) -> str:
        return f"/run/{self.tag}"

    @property
    def spool_dir(self) -> str:
        return f"/var/spool/{self.tag}"

    @property
    def lib_dir(self) -> str:
        return f"/var/lib/{self.tag}"

    @property
    def journal_in_asterisk(self) -> str:
        return f"{self.spool_dir}/journal.log"

    @property
    def recordings_in_asterisk(self) -> str:
        return f"{self.spool_dir}/recordings"

    @property
    def recordings_spool(self) -> Path:
        """Where MixMonitor writes recordings, as the daemon sees it (a host path)."""
        return self.inside(self.recordings_in_asterisk)

    @property
    def journal_path(self) -> Path:
        """The call journal as the daemon sees it (a host path)."""
        return self.inside(self.journal_in_asterisk)

    @property
    def cells_conf_path(self) -> Path:
        """Where `asterisk sync` writes the cells' endpoints for this lab (a host path)."""
        return self.inside(self.conf_dir) / CELLS_CONF

    @property
    def agi_secret(self) -> str:
        """The FastAGI shared secret, from [agi] secret_file: the lab creates the file (0640)
        when it is missing, and the daemon reads the same one."""
        if self._agi_secret is None:
            agi = self.settings.agi
            try:
                path = self.settings.path(agi.secret_file)
                self._agi_secret = load_secret(path, create=True, group=agi.secret_group)
            except AgiSecretError as e:
                raise LabError(str(e)) from None
        return self._agi_secret

    @property
    def agi_url(self) -> str:
        """CC_AGI_URL: the daemon's FastAGI address, the shared secret as its first path
        segment, so that every AGI(${CC_AGI_URL}/route,...) carries it. Never log it."""
        self.agi_secret  # noqa: B018 - made here, with the lab's error, if missing
        try:
            return rendering.agi_url(self.settings)
        except rendering.RenderError as e:
            raise LabError(str(e)) from None

    @property
    def daemon_decide_agi(self) -> str:
        """The daemon's FastAGI route that decides a cell's call (the default decision AGI)."""
        return f"{self.agi_url}/{cv.CELL_CALL_SCRIPT}"

    def product_settings(self) -> dict[str, dict[str, object]]:
        """What the product needs told to work with this lab (it has no lab defaults): the
        journal, the recordings spool and the cells' file as the daemon sees them, how to run
        this Asterisk's CLI, and [lab] enabled. See settings_file.py."""
        return {
            "lab": {"enabled": True},
            "asterisk": {
                "journal_file": str(self.journal_path),
                "cells_conf": str(self.cells_conf_path),
                "cli_command": self.command(),
            },
            "recording": {"spool_dir": str(self.recordings_spool)},
        }

    @property
    def settings_path(self) -> Path:
        """The lab's settings file (see settings_file.py): var/lab-NAME.toml."""
        return self.settings.path(f"var/lab-{self.name}.toml")

    def write_settings(self, source: Path | None, dest: Path | None = None) -> Path:
        """Write the lab's settings file: ``source``'s settings (None: the defaults) with the
        lab's own values over them, at ``dest`` (default settings_path); returns its path."""
        from callcontrol_lab import settings_file

        text = settings_file.merged(source, self.product_settings(), self.settings.base_dir)
        return settings_file.write(dest or self.settings_path, text)

    def command(self, *args: str) -> list[str]:
        """A command line run against this lab's Asterisk (inside the root when there is one)."""
        prefix = ["chroot", str(self.root)] if self.chrooted else []
        return prefix + ["asterisk", "-C", f"{self.conf_dir}/asterisk.conf", *args]

    # --- set-up -----------------------------------------------------------------------------
    def ensure_root(self) -> None:
        if not self.chrooted:
            return
        if os.geteuid() != 0:
            raise LabError("the lab runs Asterisk in a chroot, which needs root")
        ready = (self.root / ".callcontrol-ready").exists()
        if not ready:
            log.warning("building the Asterisk root in %s (once; about a minute)", self.root)
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT), str(self.root)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise LabError(f"building the Asterisk root in {self.root} failed:\n{tail}")

    def placeholders(self) -> dict[str, str]:
        """The product's placeholder values with the lab's overrides: its folders inside the
        root, the cells' context and decision AGI (the benchmark's), no strict RTP."""
        try:
            return rendering.values(
                self.settings,
                CONF_DIR=self.conf_dir,
                MOD_DIR=rendering.modules_dir(self.root),
                RUN_DIR=self.run_dir,
                SPOOL_DIR=self.spool_dir,
                LOG_DIR=self.log_dir,
                LIB_DIR=self.lib_dir,
                AGI_URL=self.agi_url,
                CELLS_CONTEXT=self.cells_context,
                DECIDE_AGI=self.decide_agi or self.daemon_decide_agi,
                JOURNAL=self.journal_in_asterisk,
                RECORDINGS=self.recordings_in_asterisk,
                # Off in the lab only (SIPp sends DTMF from another socket): see rtp.conf.
                STRICT_RTP="no",
            )
        except rendering.RenderError as e:
            raise LabError(str(e)) from None

    @property
    def observer_secret(self) -> str:
        """The secret of the lab's AMI watcher (OBSERVER_USER), made once (random, 0600)."""
        path = self.inside(self.lib_dir) / "observer-ami-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(16))
        return path.read_text().strip()

    def _with_observer(self, files: list[rendering.Rendered]) -> list[rendering.Rendered]:
        """The rendered files with the lab's watcher account added to manager.conf."""
        extra = OBSERVER_ACCOUNT.format(user=OBSERVER_USER, secret=self.observer_secret)
        return [
            rendering.Rendered(f.name, f.content + extra.encode(), f.mode)
            if f.name == "manager.conf"
            else f
            for f in files
        ]

    def render(self) -> None:
        """Write the configuration (the product's render, the lab's values and dialplan, and
        the lab's AMI watcher) into the lab's configuration folder, and make the folders,
        journal and spool it uses."""
        try:
            files = rendering.files(self.placeholders(), sorted(LAB_DIALPLAN_SOURCE.glob("*.conf")))
        except rendering.RenderError as e:
            raise LabError(str(e)) from None
        files = self._with_observer(files)
        if not any(
            line.strip() == f"[{self.cells_context}]"
            for f in files
            if f.name.startswith("dialplan/")
            for line in f.content.decode().splitlines()
        ):
            raise LabError(f"cells context [{self.cells_context}] is in no file of the dialplan")
        conf = self.inside(self.conf_dir)
        (conf / "dialplan").mkdir(parents=True, exist_ok=True)
        for d in (self.log_dir, self.run_dir, self.spool_dir, self.lib_dir):
            self.inside(d).mkdir(parents=True, exist_ok=True)
        for private in (conf, conf / "dialplan", self.inside(self.log_dir)):
            private.chmod(PRIVATE_DIR)
        rendering.write(conf, files)
        self.recordings_spool.mkdir(parents=True, exist_ok=True)
        # FILE() appends only to a file that exists.
        self.journal_path.touch(exist_ok=True)
        cells = conf / CELLS_CONF
        if not cells.exists():
            cells.write_text("; no cells yet: run `callcontrol asterisk sync`\n")

    # --- running ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        pidfile = self.inside(self.run_dir) / "asterisk.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"asterisk" in cmdline and self.conf_dir.encode() in cmdline else None

    def up(self, timeout: float = 60.0) -> LabStatus:
        self.ensure_root()
        self.render()
        if self.pid() is not None:
            self._rx("core reload")
            log.info("lab %s already running; configuration reloaded", self.name)
            return self.status()
        self._check_ports_free()
        logfile = self.inside(self.log_dir) / "console.log"
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(
                self.command("-f", "-n"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(
                    f"Asterisk exited at start (status {proc.returncode}); see {logfile}"
                )
            if self._rx("core waitfullybooted", timeout=5) is not None and self._ami_open():
                return self.status()
            time.sleep(0.2)
        self.down()
        raise LabError(f"Asterisk did not finish starting within {timeout:.0f} s; see {logfile}")

    def down(self, timeout: float = 20.0) -> bool:
        """Stop this lab's Asterisk. True when one was running."""
        pid = self.pid()
        if pid is None:
            return False
        self._rx("core stop now", timeout=10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)
        if self.pid() is not None:
            log.warning("Asterisk (pid %s) did not stop; killing it", pid)
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        return True

    def reload(self) -> None:
        self._rx("core reload")

    def switch(
        self, *, cells_context: str = DEFAULT_CELLS_CONTEXT, decide_agi: str | None = None
    ) -> None:
        """Send the cells' new calls to ``cells_context``, decided by ``decide_agi`` (None: the
        daemon). The configuration is written again; a running lab reloads PJSIP and the
        dialplan, and LabError says so if the change did not take. Calls in progress go on as
        they were. The defaults put back the production set-up."""
        self.cells_context = _checked_context(cells_context)
        self.decide_agi = None if decide_agi is None else _checked_agi(decide_agi)
        self.render()
        if self.pid() is None:
            return
        for cli in ("module reload res_pjsip.so", "dialplan reload"):
            if self._rx(cli) is None:
                raise LabError(f"lab {self.name}: `{cli}` failed")
        shown = (self._rx("dialplan show globals") or "").split()
        for want in (
            f"CC_DECIDE_AGI={self.decide_agi or self.daemon_decide_agi}",
            f"CC_CELLS_CONTEXT={self.cells_context}",
        ):
            if want not in shown:
                told = want.replace(self.agi_secret, "***")  # never the secret in a message
                raise LabError(f"lab {self.name}: the dialplan did not take {told}")
        cell = self._a_cell_endpoint()
        if cell is not None:
            shown = (self._rx(f"pjsip show endpoint {cell}") or "").split("\n")
            if not any(line.split() == ["context", ":", self.cells_context] for line in shown):
                raise LabError(f"lab {self.name}: endpoint {cell} did not take the new context")

    def _a_cell_endpoint(self) -> str | None:
        """One cell endpoint of pjsip_cells.conf (as `asterisk sync` writes it), if any."""
        try:
            text = self.cells_conf_path.read_text()
        except OSError:
            return None
        found = re.search(r"^\[([A-Za-z0-9_-]+)\]\(cell-endpoint\)", text, re.MULTILINE)
        return found.group(1) if found else None

    def status(self) -> LabStatus:
        s = self.settings
        pid = self.pid()
        version = ""
        if pid is not None:
            version = (self._rx("core show version") or "").strip()
        return LabStatus(
            name=self.name,
            running=pid is not None,
            pid=pid,
            version=version,
            root=str(self.root),
            conf_dir=str(self.inside(self.conf_dir)),
            log_file=str(self.inside(self.log_dir) / "messages.log"),
            ami=f"127.0.0.1:{s.ami.port}",
            pjsip=f"udp 127.0.0.1:{s.asterisk.pjsip_port}",
            agi=f"agi://{s.agi.host}:{s.agi.port}",
            pstn=f"{s.asterisk.pstn_host}:{s.asterisk.pstn_port}",
        )

    def rx(self, cli: str, timeout: float = 20.0) -> str:
        """Run one CLI command on this lab's Asterisk over its control socket (root's, not
        AMI's: see asterisk sync); LabError when Asterisk does not answer."""
        out = self._rx(cli, timeout)
        if out is None:
            raise LabError(f"lab {self.name}: `{cli}` failed (is the lab running?)")
        return out

    def _rx(self, cli: str, timeout: float = 20.0) -> str | None:
        try:
            proc = subprocess.run(
                self.command("-rx", cli), capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout if proc.returncode == 0 else None

    def _ami_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.settings.ami.port), timeout=1):
                return True
        except OSError:
            return False

    def _check_ports_free(self) -> None:
        s = self.settings
        for kind, port in (("AMI", s.ami.port), ("PJSIP", s.asterisk.pjsip_port)):
            sock_type = socket.SOCK_STREAM if kind == "AMI" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, sock_type) as sock:
                if kind == "AMI":
                    # As Asterisk binds it: a connection it closed lately (TIME_WAIT, as when
                    # the lab stopped under a logged-in daemon) does not hold the port; a
                    # program listening on it does.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    raise LabError(
                        f"{kind} port 127.0.0.1:{port} is already in use by another "
                        "program: stop it or choose another port"
                    ) from None
