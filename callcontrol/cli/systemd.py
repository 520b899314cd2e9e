"""`callcontrol systemd units|sysusers`: the systemd units for a site (systemd_units.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings
from callcontrol.systemd_units import (
    DEFAULT_CONFIG,
    UnitError,
    UnitOptions,
    installed_executable,
    render_sysusers,
    render_units,
)

UNITS_HELP = """\
Render the systemd units for this site: callcontrol.service (the daemon: Type=notify, its own
user, Restart=on-failure, after Asterisk and PostgreSQL, sandboxed),
callcontrol-recordings-worker.service (`recordings worker` at idle priority: enable it only
with [recording] worker = "external", or on another host; by default the daemon starts the
worker itself) and the timers
callcontrol-purge.timer (nightly `recordings purge`) and callcontrol-verify.timer (daily
`recordings verify`), each with its service. Printed on standard output, or written into
--to DIR (such as /etc/systemd/system; then `systemctl daemon-reload` and
`systemctl enable --now callcontrol.service callcontrol-purge.timer callcontrol-verify.timer`).

The units run the `callcontrol` script found beside this Python (or --exec), with
CALLCONTROL_CONFIG set to the --config file given here (or CALLCONTROL_CONFIG's, made
absolute), else /etc/callcontrol/callcontrol.toml, in the working directory
/var/lib/callcontrol. The settings are read to allow writing, in the sandbox, the recordings
spool, the journal's folder and any recording store outside /var/lib/callcontrol.
See docs/systemd.md.
"""


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `systemd units` and `systemd sysusers` commands."""
    sd = sub.add_parser("systemd", help="systemd units for the daemon and its timers")
    sd_sub = sd.add_subparsers(dest="systemd_command", required=True, metavar="units|sysusers")
    units = sd_sub.add_parser(
        "units",
        parents=parents,
        help="print or write the daemon's unit and the purge and verify timers",
        description=UNITS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    units.add_argument("--to", metavar="DIR", type=Path, help="write the files into DIR")
    _options(units)
    units.add_argument(
        "--public-key",
        metavar="FILE",
        type=Path,
        help="the chain's public key for the daily `recordings verify --public-key FILE`",
    )
    units.add_argument(
        "--asterisk",
        metavar="PATH",
        type=Path,
        default=Path("/usr/sbin/asterisk"),
        help="Asterisk's binary, for callcontrol-cells-reload.service (/usr/sbin/asterisk)",
    )
    units.add_argument(
        "--asterisk-user",
        default="asterisk",
        metavar="USER",
        help="the user callcontrol-cells-reload.service reloads PJSIP as (asterisk)",
    )
    units.set_defaults(handler=units_command)
    sysusers = sd_sub.add_parser(
        "sysusers",
        parents=parents,
        help="print the sysusers.d lines that create the daemon's user",
        description="Print the systemd-sysusers lines for the daemon's user (home "
        "/var/lib/callcontrol) and its membership of Asterisk's group (which must exist: "
        "install Asterisk first). Save them as /etc/sysusers.d/callcontrol.conf and run "
        "`systemd-sysusers`.",
    )
    _options(sysusers, with_exec=False)
    sysusers.set_defaults(handler=sysusers_command)


def _options(parser: argparse.ArgumentParser, with_exec: bool = True) -> None:
    if with_exec:
        parser.add_argument(
            "--exec",
            metavar="PATH",
            type=Path,
            help="the callcontrol script the units run (default: the one installed here)",
        )
    parser.add_argument("--user", default="callcontrol", help="the daemon's user (callcontrol)")
    parser.add_argument(
        "--asterisk-group",
        default="asterisk",
        metavar="GROUP",
        help="Asterisk's group, to read the spool and share the FastAGI secret ('' for none)",
    )


def _abs(value: Path | str | None) -> Path | None:
    return Path(os.path.abspath(value)) if value else None


def _unit_options(args: argparse.Namespace, executable: Path = Path("/")) -> UnitOptions:
    return UnitOptions(
        executable=executable,
        config=_abs(getattr(args, "config", None) or os.environ.get("CALLCONTROL_CONFIG"))
        or DEFAULT_CONFIG,
        user=args.user,
        asterisk_group=args.asterisk_group,
        public_key=_abs(getattr(args, "public_key", None)),
        asterisk_user=getattr(args, "asterisk_user", "asterisk"),
        asterisk=_abs(getattr(args, "asterisk", None)) or Path("/usr/sbin/asterisk"),
    )


def units_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        executable = _abs(args.exec) or installed_executable()
        units = render_units(_unit_options(args, executable), settings)
    except UnitError as e:
        raise CliError(str(e)) from None
    if args.to is None:
        if getattr(args, "json", False):
            emit(args, units)
        else:
            print("\n".join(f"# ---- {name} ----\n{text}" for name, text in units.items()))
        return EXIT_OK
    written = []
    try:
        args.to.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            path = args.to / name
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(path)
            written.append(str(path))
    except OSError as e:
        raise CliError(f"could not write the units into {args.to}: {e}", EXIT_FAILED) from None
    emit(
        args,
        {"written": written},
        "\n".join(written)
        + "\nthen: systemctl daemon-reload && systemctl enable --now callcontrol.service "
        "callcontrol-purge.timer callcontrol-verify.timer callcontrol-cells.path",
    )
    return EXIT_OK


def sysusers_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        text = render_sysusers(_unit_options(args))
    except UnitError as e:
        raise CliError(str(e)) from None
    print(text, end="")
    return EXIT_OK
