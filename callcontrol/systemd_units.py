"""systemd units for a site: the daemon, the recording worker (for [recording] worker =
"external"), and the timers of the retention purge and the daily
`recordings verify`, rendered from the templates in callcontrol/data/systemd/.

What differs between sites is filled in here: the absolute path of the installed `callcontrol`
script, the configuration file, the daemon's user and the group it shares with Asterisk, and
the paths outside the state directory that it must write (the spool MixMonitor writes into,
the journal's folder, where it rotates the journal, and any store or file configured outside
/var/lib/callcontrol), which the sandbox would otherwise leave read-only.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from callcontrol.adapters.asterisk.control import cells_conf_path
from callcontrol.config import Settings
from callcontrol.resources import data_dir

STATE_DIR = Path("/var/lib/callcontrol")
DEFAULT_CONFIG = Path("/etc/callcontrol/callcontrol.toml")
UNITS = (
    "callcontrol.service",
    "callcontrol-recordings-worker.service",
    "callcontrol-purge.service",
    "callcontrol-purge.timer",
    "callcontrol-verify.service",
    "callcontrol-verify.timer",
    "callcontrol-cells.path",
    "callcontrol-cells-reload.service",
)
# A user or group name systemd and useradd accept; a path systemd takes without quoting.
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_PATH = re.compile(r"/[A-Za-z0-9._+@/-]*")


class UnitError(ValueError):
    """A value that cannot go into a unit file (the message says which)."""


@dataclass(frozen=True)
class UnitOptions:
    executable: Path  # the installed `callcontrol` script
    config: Path = DEFAULT_CONFIG
    user: str = "callcontrol"
    asterisk_group: str = "asterisk"  # "" for none
    public_key: Path | None = None  # for `recordings verify --public-key`
    asterisk_user: str = "asterisk"  # runs the PJSIP reload of callcontrol-cells.path
    asterisk: Path = Path("/usr/sbin/asterisk")


def installed_executable() -> Path:
    """The `callcontrol` script beside this Python (a virtualenv's bin/), else on the PATH."""
    beside = Path(sys.executable).parent / "callcontrol"
    if beside.is_file():
        return beside
    found = shutil.which("callcontrol")
    if found is None:
        raise UnitError("no `callcontrol` script found: give --exec PATH")
    return Path(found)


def writable_paths(settings: Settings) -> list[Path]:
    """Folders outside the state directory that the daemon writes, from the settings: the
    recordings spool, the journal's folder, the recording store and the checkpoints' folder
    (when absolute and outside /var/lib/callcontrol)."""
    wanted: list[Path] = []
    r, a = settings.recording, settings.asterisk
    if r.spool_dir:
        wanted.append(Path(r.spool_dir))
    if a.journal_file:
        wanted.append(Path(a.journal_file).parent)
    wanted += [Path(r.store_dir), Path(r.checkpoints_file).parent]
    if a.sync_cells:  # rewritten atomically: a new file in its folder, renamed over the old
        wanted.append(cells_conf_path(settings).parent)
    out: list[Path] = []
    for path in wanted:
        path = path.expanduser()
        if not path.is_absolute() or path == STATE_DIR or STATE_DIR in path.parents:
            continue  # relative paths are under the working directory, the state directory
        if path not in out:
            out.append(path)
    return [p for p in out if not any(q in p.parents for q in out)]  # inside another: covered


def _path(value: Path, what: str) -> str:
    text = str(value)
    if not _PATH.fullmatch(text):
        raise UnitError(f"{what} {text!r}: an absolute path of letters, digits and ._+@/- only")
    return text


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise UnitError(f"{what} {value!r} is not a user or group name")
    return value


def _protect_home(executable: Path) -> str:
    """ProtectHome: "yes" hides /home, /root and /run/user; "read-only" when the script is there (a
    virtualenv in a home folder), which the daemon must still run."""
    homes = (Path("/home"), Path("/root"), Path("/run/user"))
    resolved = executable.resolve()
    inside = any(h in p.parents for h in homes for p in (executable, resolved))
    return "read-only" if inside else "yes"


def _fill(template: str, values: dict[str, str]) -> str:
    text = template
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise UnitError(f"unfilled template fields {left}")  # a defect of ours, not the user's
    return text


def render_units(options: UnitOptions, settings: Settings) -> dict[str, str]:
    """File name -> text, for every unit in UNITS."""
    folder = data_dir("systemd")
    groups = ""
    if options.asterisk_group:
        groups = f"SupplementaryGroups={_name(options.asterisk_group, 'Asterisk group')}\n"
    rw = "".join(f"ReadWritePaths=-{_path(p, 'path')}\n" for p in writable_paths(settings))
    common = _fill(
        (folder / "common.inc").read_text(),
        {
            "USER": _name(options.user, "user"),
            "GROUPS": groups,
            "CONFIG": _path(options.config, "configuration file"),
            "READ_WRITE": rw,
            "PROTECT_HOME": _protect_home(options.executable),
        },
    )
    verify_args = ""
    if options.public_key is not None:
        verify_args = f" --public-key {_path(options.public_key, 'public key')}"
    values = {
        "EXEC": _path(options.executable, "executable"),
        "COMMON": common,
        "VERIFY_ARGS": verify_args,
        "CELLS_CONF": _path(cells_conf_path(settings), "cells' endpoints file"),
        "ASTERISK_USER": _name(options.asterisk_user, "Asterisk user"),
        "ASTERISK": _path(options.asterisk, "Asterisk binary"),
    }
    return {name: _fill((folder / name).read_text(), values) for name in UNITS}


def render_sysusers(options: UnitOptions) -> str:
    """The sysusers.d lines that create the daemon's user (and add it to Asterisk's group)."""
    membership = ""
    if options.asterisk_group:
        group = _name(options.asterisk_group, "Asterisk group")
        membership = f"m {options.user} {group}"
    text = (data_dir("systemd") / "callcontrol.sysusers").read_text()
    return _fill(text, {"USER": _name(options.user, "user"), "MEMBERSHIP": membership})
