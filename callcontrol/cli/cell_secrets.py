"""`cell add` and `cell set-password`: a handset's SIP password, shown once, stored as a hash.

The password is generated (and printed once), or read from standard input
(`--sip-password-stdin`; a prompt without echo when it is a terminal): never from the command
line, where every local account can read it (ps, /proc/PID/cmdline, shell history).
`--sip-password P` is refused unless [lab] enabled. The database keeps only the digest hash
(domain/sip_digest.py). In the lab ([lab] enabled) the password is also handed to the lab's hook
(entry point `handset_password` in group `callcontrol.lab_hooks`, which the callcontrol-lab
distribution provides), which keeps it for the simulated handsets: the product imports nothing
of the lab, and a prison's install has no such hook.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from importlib.metadata import entry_points
from typing import Any

from callcontrol.cli import operator, row
from callcontrol.cli.common import EXIT_OK, EXIT_USAGE, CliError, emit
from callcontrol.config import Settings

Args = argparse.Namespace

FIELDS = ("name", "wing", "sip_username", "enabled", "disabled_reason", "created_at", "updated_at")
PASSWORD_ON_ARGV = (
    "--sip-password puts the password on the command line, where every local account can read "
    "it: leave it out to have one generated, or use --sip-password-stdin "
    "([lab] enabled allows it in the lab)"
)


def given_password(args: Args, settings: Settings) -> str | None:
    """The password the operator gave (None: generate one)."""
    if getattr(args, "sip_password", None) is not None:
        if not settings.lab.enabled:
            raise CliError(PASSWORD_ON_ARGV, EXIT_USAGE)
        return str(args.sip_password)
    if not getattr(args, "sip_password_stdin", False):
        return None
    if sys.stdin.isatty():
        password = getpass.getpass("SIP password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("no SIP password on standard input", EXIT_USAGE)
    return password


LAB_HOOKS = "callcontrol.lab_hooks"


def tell_lab(settings: Settings, cell: str, password: str) -> None:
    """In the lab only ([lab] enabled): hand a handset's new password to the lab's hooks
    (``hook(settings, cell, password)``), which keep it for the simulated handsets."""
    if not settings.lab.enabled:
        return
    for hook in entry_points(group=LAB_HOOKS, name="handset_password"):
        hook.load()(settings, cell, password)


def _shown(args: Args, settings: Settings, cell: Any, password: str, generated: bool) -> int:
    tell_lab(settings, cell.name, password)
    data = row(cell, FIELDS)
    if generated:
        data["sip_password"] = password
        said = f"SIP password (shown only this once): {password}"
    else:
        said = "SIP password: as given"
    emit(args, data, f"cell {cell.name} {args.done}; SIP username: {cell.sip_username}; {said}")
    return EXIT_OK


async def cell_add(args: Args, settings: Settings) -> int:
    password = given_password(args, settings)
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        cell, made = await services.cells.add(who_acts, args.cell, password, args.wing)
    args.done = "added"
    return _shown(args, settings, cell, made, password is None)


async def cell_set_password(args: Args, settings: Settings) -> int:
    password = given_password(args, settings)
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        cell, made = await services.cells.set_sip_password(who_acts, args.cell, password)
    args.done = "has a new SIP password (run `callcontrol asterisk sync`)"
    return _shown(args, settings, cell, made, password is None)


PASSWORD_HELP = "12 to 128 printable characters without spaces, ';' or '#'"
ARGS = (
    (
        ("--sip-password-stdin",),
        {
            "action": "store_true",
            "help": f"read the password from standard input ({PASSWORD_HELP}; a prompt without "
            "echo on a terminal) instead of generating a random 24-character one",
        },
    ),
    (
        ("--sip-password",),
        {"metavar": "P", "help": "the password itself: refused unless [lab] enabled"},
    ),
)
