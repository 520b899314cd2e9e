"""Benchmark mode "pyst2": make the per-call AGI script runnable by a lab's Asterisk.

``prepare(lab)`` returns the script's path as Asterisk sees it, for
``lab.switch(decide_agi=...)``. It is idempotent: run it before every bench; what is in place
already is left alone, so a second run takes about a second.

A chrooted lab (Asterisk 22 in the Debian sid root) runs the script inside the root, with the
root's own Python: Debian's packages give it what is compiled (SQLAlchemy 2, asyncpg, greenlet),
installed once with apt inside the root (the root has no nameserver on purpose, see LAB-NOTES:
apt gets the host's resolv.conf in a mount namespace of its own, so Asterisk never sees it).
The pure-Python packages are copied from the Python running this, so the script decides with the
daemon's versions: callcontrol itself, pyst2 (``asterisk``), six and phonenumbers. A lab on a
system Asterisk runs the script on the host with this Python, which has all of them.

Everything goes into the lab's own folder (``/var/lib/callcontrol-lab-NAME/bench-pyst2``): the
wrapper Asterisk runs, the settings the script reads (the daemon's database URL, PIN secret, site
and billing settings; mode 0600), and in a root the copied packages.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import get_type_hints

from sqlalchemy.engine import make_url

from callcontrol.adapters.db.engine import database_url
from callcontrol.config import Settings
from callcontrol_lab.lab import Lab, LabError

log = logging.getLogger("callcontrol_lab.bench.pyst2_root")

HOME = "bench-pyst2"
ENTRY = "cc-decide-pyst2"
ROOT_PYTHON = "/usr/bin/python3"
# What the script needs from Debian in the root (the rest is copied).
ROOT_PACKAGES = ("python3", "python3-sqlalchemy", "python3-asyncpg", "python3-greenlet", "tzdata")
_ROOT_PROBE = (
    "import asyncpg, greenlet, sqlalchemy.ext.asyncio, zoneinfo; "
    "zoneinfo.ZoneInfo('Europe/London'); "
    "assert sqlalchemy.__version__.split('.')[0] == '2', sqlalchemy.__version__"
)
# Pure-Python packages copied into the root from this Python: import name -> what it is.
COPIED = {
    "callcontrol": "callcontrol",
    "asterisk": "pyst2",
    "six": "six (pyst2 needs it)",
    "phonenumbers": "phonenumbers",
}
APT_LOCK_WAIT_S = 300
_NO_MOUNT = 97  # the exit status of the install when the bind mount of resolv.conf failed


@dataclass(frozen=True)
class Pyst2Home:
    """Where the script's files are: ``host`` on the host, ``inside`` as Asterisk sees it."""

    host: Path
    inside: str

    @property
    def entry(self) -> str:
        return f"{self.inside}/{ENTRY}"

    @property
    def config(self) -> str:
        return f"{self.inside}/callcontrol.toml"

    @property
    def lib(self) -> str:
        return f"{self.inside}/lib"

    @property
    def timings(self) -> str:
        return f"{self.inside}/timings.log"

    def on_host(self, inside: str) -> Path:
        return self.host / Path(inside).relative_to(self.inside)


def home(lab: Lab) -> Pyst2Home:
    inside = f"{lab.lib_dir}/{HOME}"
    return Pyst2Home(lab.inside(inside), inside)


def timings_file(lab: Lab) -> Path:
    """Where the script appends one line per call (pyst2_agi.timing_line) when prepared with
    ``timings=True`` (a host path)."""
    h = home(lab)
    return h.on_host(h.timings)


def prepare(lab: Lab, *, timings: bool = False) -> str:
    """Make the pyst2 script runnable by ``lab``'s Asterisk; its path as Asterisk sees it.

    LabError when it cannot be: no PostgreSQL, a database the root cannot reach, apt failing.
    """
    started = time.monotonic()
    url = script_database_url(lab.settings, chrooted=lab.chrooted)
    h = home(lab)
    if lab.chrooted:
        lab.ensure_root()  # first: the build wants no folder where the root goes
        ensure_root_packages(lab.root)
        lib_host = h.on_host(h.lib)
        for name in COPIED:
            sync_package(name, lib_host)
        python, lib = ROOT_PYTHON, h.lib
    else:
        python, lib = sys.executable, None
    h.host.mkdir(parents=True, exist_ok=True)
    _write(h.on_host(h.config), script_config(lab.settings, url), 0o600)
    entry = entry_script(python, lib, h.config, h.timings if timings else None)
    _write(h.on_host(h.entry), entry, 0o755)
    versions = _selfcheck(lab, python, lib)
    log.info(
        "pyst2 AGI script ready at %s (%s) in %.1f s", h.entry, versions, time.monotonic() - started
    )
    return h.entry


# --- the settings the script reads -----------------------------------------------------------


def script_database_url(settings: Settings, *, chrooted: bool) -> str:
    """The daemon's database URL (asyncpg), checked to be one the script can reach."""
    url = make_url(database_url(settings))
    if url.get_backend_name() != "postgresql":
        raise LabError("the pyst2 benchmark mode needs PostgreSQL ([database] url)")
    socket_dir = str(url.query.get("host", "")) or (url.host or "")
    if chrooted and socket_dir.startswith("/"):
        raise LabError(
            "the pyst2 script runs in the Asterisk root, which cannot reach PostgreSQL's socket "
            f"{socket_dir}: give [database] url with a TCP host (127.0.0.1)"
        )
    return url.render_as_string(hide_password=False)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


# A setting that is a TOML table of lists in the file ([billing.wing_windows]).
_TABLE = tuple[tuple[str, tuple[str, ...]], ...]


def script_config(settings: Settings, url: str) -> str:
    """The settings file of the script: what the decision reads, as the daemon has it."""
    lines = [
        "# Written by callcontrol_lab.bench.pyst2_root: the pyst2 AGI script's settings.",
        "[database]",
        f"url = {_toml(url)}",
        "[security]",
        f"pin_secret = {_toml(settings.pin_secret().decode())}",
    ]
    for name in ("site", "billing"):
        section = getattr(settings, name)
        hints = get_type_hints(type(section))
        lines.append(f"[{name}]")
        tables: list[str] = []
        for f in fields(section):
            value = getattr(section, f.name)
            if hints[f.name] != _TABLE:
                lines.append(f"{f.name} = {_toml(value)}")
            elif value:
                tables.append(f"[{name}.{f.name}]")
                tables += [f"{_toml(k)} = {_toml(v)}" for k, v in value]
        lines += tables
    return "\n".join(lines) + "\n"


def entry_script(python: str, lib: str | None, config: str, timings: str | None) -> str:
    """The executable Asterisk runs: ``python -I`` (no PYTHON* variables from Asterisk's
    environment), the copied packages first on the path, then pyst2_agi.main."""
    argv = ["--config", config] + (["--timings", timings] if timings else [])
    path = f"sys.path.insert(0, {lib!r})\n" if lib else ""
    return (
        f"#!{python} -I\n"
        "# Written by callcontrol_lab.bench.pyst2_root: the pyst2 AGI script run per call.\n"
        "import time\n\n"
        "_STARTED = time.perf_counter()\n"
        "import sys\n\n"
        f"{path}"
        "from callcontrol_lab.bench.pyst2_agi import main\n\n"
        f"sys.exit(main({argv!r}, started=_STARTED))\n"
    )


def _write(path: Path, text: str, mode: int) -> None:
    """Write atomically (a call may be starting the script meanwhile), only when it changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --- the packages ----------------------------------------------------------------------------


def package_source(name: str) -> Path:
    """Where this Python imports ``name`` from: a package folder or a module file."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        what = COPIED.get(name, name)
        raise LabError(f"{what} is not installed here: `pip install -e './lab[dev]'` installs it")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin is None:
        raise LabError(f"{name} has no source file to copy")
    return Path(spec.origin)


def sync_package(name: str, lib: Path) -> int:
    """Copy the package's .py files into ``lib``, write only what changed and remove what is
    gone; the number of files written."""
    src = package_source(name)
    if src.is_file():
        files = {Path(src.name): src}
        dst = lib
    else:
        files = {p.relative_to(src): p for p in src.rglob("*.py") if "__pycache__" not in p.parts}
        dst = lib / name
    written = 0
    for rel, path in files.items():
        data = path.read_bytes()
        target = dst / rel
        if target.exists() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written += 1
    if src.is_dir() and dst.exists():
        for old in dst.rglob("*.py"):
            if "__pycache__" not in old.parts and old.relative_to(dst) not in files:
                old.unlink()
    return written


def _root_ready(root: Path) -> bool:
    probe = subprocess.run(
        ["chroot", str(root), ROOT_PYTHON, "-I", "-c", _ROOT_PROBE],
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


def ensure_root_packages(root: Path) -> bool:
    """Install ROOT_PACKAGES in the root unless its Python has them; True when it installed."""
    if _root_ready(root):
        return False
    log.warning("installing %s in the Asterisk root %s (once)", " ".join(ROOT_PACKAGES), root)
    apt = (
        f"apt-get -q -o DPkg::Lock::Timeout={APT_LOCK_WAIT_S} update && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
        f"-o DPkg::Lock::Timeout={APT_LOCK_WAIT_S} " + " ".join(ROOT_PACKAGES)
    )
    proc = _apt_in_namespace(root, apt)
    if proc is None:
        proc = _apt_with_copied_resolv_conf(root, apt)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise LabError(f"installing {' '.join(ROOT_PACKAGES)} in {root} failed:\n{tail}")
    if not _root_ready(root):
        raise LabError(f"the Python in {root} still cannot import SQLAlchemy 2 and asyncpg")
    return True


def _apt_in_namespace(root: Path, apt: str) -> subprocess.CompletedProcess[str] | None:
    """apt in the root with the host's resolv.conf bind-mounted in a mount namespace of its own:
    the root's empty resolv.conf, which Asterisk reads, never changes. None when this machine
    cannot make the namespace or the mount."""
    if shutil.which("unshare") is None:
        return None
    ok = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    if ok.returncode != 0:
        return None
    script = (
        f'mount --bind /etc/resolv.conf "$0/etc/resolv.conf" || exit {_NO_MOUNT}\n'
        f'exec chroot "$0" sh -c {shlex.quote(apt)}\n'
    )
    (root / "etc" / "resolv.conf").touch(exist_ok=True)
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(root)],
        capture_output=True,
        text=True,
    )
    return None if proc.returncode == _NO_MOUNT else proc


def _apt_with_copied_resolv_conf(root: Path, apt: str) -> subprocess.CompletedProcess[str]:
    """The fallback: the host's resolv.conf in the root while apt runs, emptied again after."""
    log.warning("no mount namespace here: the root gets a nameserver while apt runs")
    resolv = root / "etc" / "resolv.conf"
    try:
        shutil.copyfile("/etc/resolv.conf", resolv)
        return subprocess.run(
            ["chroot", str(root), "sh", "-c", apt], capture_output=True, text=True
        )
    finally:
        resolv.write_text("")


def _selfcheck(lab: Lab, python: str, lib: str | None) -> str:
    """Run the script's imports once where Asterisk will run it: a clear error now rather than
    refused calls later, and the bytecode written before the first call."""
    code = (
        "import sys\n"
        + (f"sys.path.insert(0, {lib!r})\n" if lib else "")
        + "from callcontrol_lab.bench.pyst2_agi import selfcheck\nprint(selfcheck())\n"
    )
    cmd = [python, "-I", "-c", code]
    if lab.chrooted:
        cmd = ["chroot", str(lab.root), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise LabError(f"the pyst2 script cannot run in {lab.root}:\n{tail}")
    return proc.stdout.strip()
