"""The command line: ``python -m callcontrol_lab.bench.micro``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from callcontrol.adapters.db.engine import DatabaseError, redact
from callcontrol.config import ConfigError
from callcontrol_lab.bench.micro.errors import BenchmarkError, BrokenBenchmark
from callcontrol_lab.bench.micro.provision import create_scratch_database, drop_scratch_database
from callcontrol_lab.bench.micro.report import format_table, profile_summary
from callcontrol_lab.bench.micro.runner import run_micro


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _not_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {number}")
    return number


def parser() -> argparse.ArgumentParser:
    # Here: bench/history.py imports this package (its errors and provisioning).
    from callcontrol_lab.bench.history import add_history_options

    p = argparse.ArgumentParser(
        prog="python -m callcontrol_lab.bench.micro",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "FastAGI micro-benchmark without Asterisk. Starts the daemon's FastAGI server with "
            "its real cell-call and call-end routes (wired as callcontrol.app wires them) on an "
            "ephemeral 127.0.0.1 port, on a database that it migrates and provisions itself "
            "(cells, one prisoner each with a PIN, an approved contact, credit), and plays "
            "Asterisk from a separate process: each call is decided (cell-call: the PIN asked "
            "and answered, the decision set), then settled (call-end, as the hangup handler "
            "reports it), in rounds of one call per cell. Then the same client against a route "
            "that answers at once (the baseline). Prints decisions per second and latency "
            "(connect to close) of both, settlements per second, the ratio, and what each "
            "request cost (CPU of the server, the client and PostgreSQL; database sessions "
            "and statements). Any call not allowed breaks the run (exit status 1): a refusal "
            "is never counted as a decision. Exit status 2: it could not be set up.",
            width=88,
        ),
        epilog=(
            "examples:\n"
            "  python -m callcontrol_lab.bench.micro            # SQLite, a temporary file\n"
            "  python -m callcontrol_lab.bench.micro --scratch --json /tmp/agi-micro.json \\\n"
            "      --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres\n"
            "  python -m callcontrol_lab.bench.micro --calls 40 --concurrency 5 --warmup 0\n"
            "  python -m callcontrol_lab.bench.micro --history --calls 2000 \\\n"
            "      --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres\n"
            "      # on an empty database, then on 10,000 prisoners' 5 million rows of history\n"
            "      # (--history-prisoners 100 --history-rows 20000: a small one, in seconds)"
        ),
    )
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="the database to fill: sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST"
        "/DB; it must hold no cells but the benchmark's (default: a temporary SQLite file)",
    )
    p.add_argument(
        "--scratch",
        action="store_true",
        help="PostgreSQL: create a new database on the server of --database-url (its user "
        "needs CREATEDB), run there, and drop it afterwards",
    )
    p.add_argument("--calls", type=_positive, default=5000, help="measured calls (N), default 5000")
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=50,
        help="concurrent AGI connections (C), default 50",
    )
    p.add_argument(
        "--warmup",
        type=_not_negative,
        default=500,
        help="calls before measuring, for ours and for the baseline, default 500",
    )
    p.add_argument(
        "--cells",
        type=_positive,
        help="cells to provision (one prisoner each; one call per cell per round); default "
        "10 x concurrency, at least 200, at most --calls",
    )
    p.add_argument(
        "--talk-seconds",
        type=_not_negative,
        default=30,
        help="talk time the hangup handler reports, so each call is charged (0: never "
        "answered, nothing charged); default 30",
    )
    p.add_argument(
        "--same-loop",
        action="store_true",
        help="play Asterisk on the server's own event loop instead of a separate process "
        "(the client's work then counts against the server)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    p.add_argument(
        "--profile",
        metavar="PATH",
        help="cProfile the server process during our measured calls; stats written to PATH "
        "and the top functions printed",
    )
    add_history_options(p, default=False)
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the daemon's log level during the run (default INFO, as `callcontrol run`: it "
        "logs every decision and settlement, and that costs time too)",
    )
    p.add_argument(
        "--log-file",
        metavar="PATH",
        help="where the daemon's log goes (default: callcontrol-agi-micro.log in the temporary "
        "folder); warnings and errors are shown on stderr too",
    )
    return p


@contextlib.contextmanager
def _daemon_logging(level: str, path: Path) -> Iterator[None]:
    """Log as the daemon does (its format, at ``level``) to ``path``, warnings to stderr too;
    the logging as it was afterwards."""
    from callcontrol.app import LOG_FORMAT

    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    saved = list(root.handlers), root.level, alembic.level
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    for handler in (to_file, to_stderr):
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers = [to_file, to_stderr]
    root.setLevel(level)
    alembic.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
        alembic.setLevel(saved[2])
        to_file.close()


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    def progress(message: str) -> None:
        print(f"agi-micro: {message}", file=sys.stderr, flush=True)

    url = args.database_url
    scratch_url = None
    options: dict[str, Any] = {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "cells": args.cells,
        "talk_seconds": args.talk_seconds,
        "separate_process": not args.same_loop,
        "baseline": not args.no_baseline,
        "profile_path": args.profile,
    }
    if args.history:  # two scratch databases on the server: empty, and the history's copy
        from callcontrol_lab.bench.history import spec_from
        from callcontrol_lab.bench.micro.history_run import run_micro_with_history

        if not url:
            raise BenchmarkError("--history needs --database-url (a PostgreSQL server)")
        return await run_micro_with_history(url, spec_from(args), progress, **options)
    if args.scratch:
        if not url:
            raise BenchmarkError("--scratch needs --database-url (a PostgreSQL server)")
        scratch_url = url = await create_scratch_database(url)
        progress(f"created scratch database {redact(url)}")
    try:
        return await run_micro(url, progress=progress, **options)
    finally:
        if scratch_url is not None:
            await drop_scratch_database(args.database_url, scratch_url)
            progress(f"dropped scratch database {redact(scratch_url)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log_path = Path(args.log_file or Path(tempfile.gettempdir()) / "callcontrol-agi-micro.log")
    print(f"agi-micro: the daemon's log goes to {log_path}", file=sys.stderr)
    try:
        with _daemon_logging(args.log_level, log_path):
            report = asyncio.run(_main(args))
    except BrokenBenchmark as e:
        print(f"agi-micro: BROKEN RUN: {e}", file=sys.stderr)
        print(f"agi-micro: outcomes {e.outcomes}; for instance {e.examples}", file=sys.stderr)
        print(f"agi-micro: the daemon's log is in {log_path}", file=sys.stderr)
        if args.json:
            error = {"error": str(e), "outcomes": e.outcomes, "examples": e.examples}
            Path(args.json).write_text(json.dumps(error, indent=2) + "\n")
        return 1
    except (BenchmarkError, ConfigError, DatabaseError) as e:
        print(f"agi-micro: error: {e}", file=sys.stderr)
        return 2
    except (OSError, DBAPIError) as e:
        print(f"agi-micro: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(format_table(report))
    if args.profile:
        print("\n" + profile_summary(args.profile))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.json}")
    return 0
