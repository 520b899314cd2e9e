"""`callcontrol-lab`: start, stop or show the Asterisk lab (Asterisk 22 running callcontrol's
rendered configuration), and write the lab's settings file for `callcontrol` and
`callcontrol-sim`. Development and tests only: a prison's install has no lab."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from callcontrol.cli import Parser, common_options, run
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import ConfigError, Settings
from callcontrol_lab.lab import Lab, LabError

DESCRIPTION = """\
The Asterisk lab: Asterisk 22 running callcontrol's configuration, rendered by the same code as
`callcontrol asterisk render`, with the lab's own folders. Asterisk comes from the PATH when a
version 20 or newer is there, otherwise from a Debian sid root built once into [lab] root
(default ~/.cache/callcontrol/asterisk-root). Everything binds to 127.0.0.1; the ports come
from the settings.

`up` also writes the lab's settings file, var/lab-NAME.toml: the given settings with the lab's
own (the journal, the recordings spool, the cells' file, the chroot's `asterisk` command,
[lab] enabled). Give it to `callcontrol` and `callcontrol-sim` with --config.
"""


def _lab(settings: Settings) -> Lab:
    try:
        return Lab(settings)
    except LabError as e:
        raise CliError(str(e), EXIT_FAILED) from None


def lab_up(args: argparse.Namespace, settings: Settings) -> int:
    lab = _lab(settings)
    try:
        status = lab.up()
        given = getattr(args, "config", None)
        written = lab.write_settings(Path(given) if given else None)
    except (LabError, ConfigError) as e:
        raise CliError(str(e), EXIT_FAILED) from None
    emit(
        args,
        status.as_dict() | {"settings_file": str(written)},
        f"lab {status.name}: Asterisk running (pid {status.pid})\n"
        f"  SIP {status.pjsip}, AMI {status.ami}, daemon expected at {status.agi}\n"
        f"  called parties at {status.pstn}; configuration in {status.conf_dir}\n"
        f"  log: {status.log_file}\n"
        f"  settings for callcontrol and callcontrol-sim: --config {written}",
    )
    return EXIT_OK


def lab_down(args: argparse.Namespace, settings: Settings) -> int:
    lab = _lab(settings)
    was = lab.down()
    emit(
        args,
        {"name": lab.name, "stopped": was},
        f"lab {lab.name}: " + ("Asterisk stopped" if was else "was not running"),
    )
    return EXIT_OK


def lab_status(args: argparse.Namespace, settings: Settings) -> int:
    status = _lab(settings).status()
    if status.running:
        text = (
            f"lab {status.name}: running (pid {status.pid})\n  {status.version}\n"
            f"  SIP {status.pjsip}, AMI {status.ami}, daemon at {status.agi}, "
            f"called parties at {status.pstn}\n  root {status.root}\n"
            f"  configuration {status.conf_dir}\n  log {status.log_file}"
        )
    else:
        text = f"lab {status.name}: not running (root {status.root})"
    emit(args, status.as_dict(), text)
    return EXIT_OK if status.running else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parents = [common_options()]
    parser = Parser(
        prog="callcontrol-lab",
        description=DESCRIPTION,
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="lab_command", required=True, metavar="up|down|status")
    for name, handler, help, description in (
        ("up", lab_up, "set up and start the lab (idempotent)",
         "Build the Asterisk root if needed, write the configuration and start Asterisk; write "
         "the lab's settings file. If it runs already, the configuration is written again and "
         "reloaded."),
        ("down", lab_down, "stop the lab's Asterisk",
         "Stop the lab's Asterisk; leaves no process behind."),
        ("status", lab_status, "say what runs where",
         "Show whether the lab runs, and its ports, folders and log file. Exit status 0 when it "
         "runs, 1 when not."),
    ):  # fmt: skip
        p = sub.add_parser(name, parents=parents, help=help, description=description)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv, "callcontrol-lab")


if __name__ == "__main__":
    sys.exit(main())
