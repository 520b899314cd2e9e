"""The `callcontrol` command: the operator's tool and the daemon's launcher.

Every command reads the settings (defaults, then ``--config FILE``, then ``CALLCONTROL_*``
environment variables). Errors are one line on stderr, ``callcontrol: error: ...``, with exit
status 2 for bad arguments or refused input (nothing was written) and 1 when the command could
not be carried out (database unreachable, schema not current, ...).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from callcontrol.cli import admin, ops
from callcontrol.cli.common import EXIT_USAGE, CliError, call_handler, fail
from callcontrol.config import ConfigError, load_settings

DESCRIPTION = """\
Call control for in-cell prison telephones, beside Asterisk.

Operators use it to keep the database: cells and their handsets, prisoners and their PINs,
each prisoner's contact list, and numbers blocked or allowed for everyone. It also runs the
daemon that decides every call, and the Asterisk lab.
"""

EPILOG = """\
Settings come from the defaults, then the TOML file given with --config (or named by
CALLCONTROL_CONFIG), then environment variables CALLCONTROL_<SECTION>_<KEY>, for example
CALLCONTROL_DATABASE_URL=postgresql+asyncpg://callcontrol@db/callcontrol.

Run `callcontrol COMMAND --help` for the details of a command. Exit status: 0 done; 1 could
not be done (database unreachable, ...); 2 bad arguments or refused input, nothing written.
"""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"callcontrol: error: {message} (see `{self.prog} --help`)\n")


def common_options() -> argparse.ArgumentParser:
    """--config and --json, accepted before or after the command's name."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command is not reset by the command's own parser.
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="settings file (TOML); environment variables CALLCONTROL_* override it",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as one JSON document",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parents = [common_options()]
    parser = Parser(
        prog="callcontrol",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(sub, parents)
    ops.register(sub, parents)
    return parser


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    try:
        settings = load_settings(getattr(args, "config", None))
        return call_handler(args.handler, args, settings)
    except CliError as e:
        return fail(_one_line(str(e)), e.status)
    except ConfigError as e:
        return fail(_one_line(str(e)), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
