"""How `prisoner add` and `prisoner set-pin` get a PIN: never from the command line.

A PIN on argv can be read by every local user (``ps``, /proc/PID/cmdline) and stays in shell
history. So the PIN comes from a prompt (not echoed, asked twice), from one line of standard
input (``--pin-stdin``, for scripts), or is generated at random and printed once
(``--generate-pin``). ``--pin PIN`` is refused unless ``[lab] enabled`` (the lab's convenience).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from callcontrol.cli.common import EXIT_USAGE, CliError
from callcontrol.config import Settings
from callcontrol.domain.pins import generate_pin
from callcontrol.services.errors import SharedPin

GENERATE_TRIES = 20  # a generated PIN that a cellmate has is drawn again

ARGV_REFUSED = (
    "--pin puts the PIN on the command line, where other local users can read it: type it at "
    "the prompt, or give --pin-stdin or --generate-pin (--pin is accepted only with [lab] enabled)"
)


def add_pin_options(parser: argparse.ArgumentParser) -> None:
    """The ways to give a PIN; without any of them, it is asked at the terminal."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the PIN from the first line of standard input (for scripts)",
    )
    how.add_argument(
        "--generate-pin",
        action="store_true",
        help="make a random PIN (no digit next to itself, no run like 1234) and print it once",
    )
    how.add_argument(
        "--pin",
        metavar="PIN",
        help="the PIN on the command line: refused unless [lab] enabled (the lab and tests)",
    )


def typed_pin(args: argparse.Namespace, settings: Settings) -> str | None:
    """The PIN given (argv in the lab, stdin or the prompt), or None for --generate-pin."""
    if args.pin is not None:
        if not settings.lab.enabled:
            raise CliError(ARGV_REFUSED, EXIT_USAGE)
        return str(args.pin)
    if args.pin_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if args.generate_pin:
        return None
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to ask for the PIN: give --pin-stdin (and the PIN on standard input) "
            "or --generate-pin",
            EXIT_USAGE,
        )
    first = getpass.getpass("PIN: ")
    if getpass.getpass("PIN again: ") != first:
        raise CliError("the two PINs differ: nothing changed", EXIT_USAGE)
    return first


async def with_pin(
    typed: str | None, digits: int, store: Callable[[str], Awaitable[Any]]
) -> tuple[Any, str | None]:
    """Run ``store(pin)`` with the typed PIN, or a generated one if ``typed`` is None; returns
    its result and the generated PIN (to print once), else None. A generated PIN that a
    cellmate has is drawn again."""
    if typed is not None:
        return await store(typed), None
    for _ in range(GENERATE_TRIES):
        pin = generate_pin(digits)
        try:
            return await store(pin), pin
        except SharedPin:
            continue
    raise CliError("could not draw a PIN that no cellmate has: try again", EXIT_USAGE)
