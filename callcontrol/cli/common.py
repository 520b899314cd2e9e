"""What every operator command shares: settings, one-line errors, --json output."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from callcontrol.config import Settings

# A handler takes the parsed arguments and the settings and returns the exit status.
Handler = Callable[[argparse.Namespace, Settings], int | Awaitable[int]]

EXIT_OK = 0
EXIT_FAILED = 1  # the command was valid but could not be carried out (Asterisk down, ...)
EXIT_USAGE = 2  # bad arguments or refused input: nothing was written


class CliError(Exception):
    """A refusal to print as one line on stderr; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """Print ``data`` as one JSON document with --json, else ``text`` (or a plain rendering)."""
    if getattr(args, "json", False):
        print(json.dumps(data, default=str, sort_keys=True))
    elif text is not None:
        print(text)
    elif isinstance(data, list):
        for row in data:
            print(_plain(row))
    else:
        print(_plain(data))


def _plain(row: Any) -> str:
    if isinstance(row, dict):
        return "  ".join(f"{k}={v}" for k, v in row.items())
    return str(row)


def call_handler(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    result = handler(args, settings)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result)  # type: ignore[arg-type]


def fail(message: str, status: int = EXIT_USAGE, prog: str = "callcontrol") -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status
