"""`callcontrol calls history`: past calls, allowed and refused, as a table, JSON or CSV.

It reads the database (the settings' [database] url) through the history port; the filters
and the CSV are services/call_history.py's and services/cdr.py's, shared with GET /calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from callcontrol.adapters.db.history_store import SqlHistoryReader
from callcontrol.cli import Parents, command, table
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from callcontrol.cli.recordings import store_sessions
from callcontrol.config import Settings
from callcontrol.domain.model import Reason
from callcontrol.services import call_history, cdr
from callcontrol.services.call_history import HistoryError, HistoryFilter, HistoryReader

Args = argparse.Namespace
SHOWN = ("decision_id", "call_id", "decided_at", "cell", "prisoner", "dialled", "decision",
         "reason", "talk_seconds", "charge_pence", "recording_id")  # fmt: skip


def history_filter(args: Args, settings: Settings) -> HistoryFilter:
    try:
        return call_history.parse_filter(
            tz=ZoneInfo(settings.site.timezone),
            region=settings.site.region,
            prisoner=args.prisoner,
            cell=args.cell,
            number=args.number,
            since=args.since,
            until=args.until,
            outcome=args.outcome,
            reason=args.reason,
            limit=args.limit,
            before=args.before,
        )
    except HistoryError as e:
        raise CliError(str(e), EXIT_USAGE) from None


async def _write_csv(reader: HistoryReader, query: HistoryFilter, every: bool, out: TextIO) -> int:
    out.write(cdr.csv_header())
    count = 0
    if every:
        async for row in call_history.every_row(reader, query):
            out.write(cdr.csv_lines([row], header=False))
            count += 1
        return count
    rows = (await call_history.page(reader, query)).rows
    out.write(cdr.csv_lines(rows, header=False))
    return len(rows)


async def calls_history(args: Args, settings: Settings) -> int:
    query = history_filter(args, settings)
    if args.csv is None and args.all:
        raise CliError("--all is for --csv exports (a table or JSON is one page: --limit)")
    async with store_sessions(settings) as sessions:  # errors: one line, exit status 1
        reader = SqlHistoryReader(sessions)
        if args.csv is not None:
            return await _export(reader, query, args)
        got = await call_history.page(reader, query)
    rows = [cdr.as_dict(r) for r in got.rows]
    if getattr(args, "json", False):
        print(json.dumps({"calls": rows, "next_before": got.next_before}, sort_keys=True))
        return EXIT_OK
    print(table(rows, SHOWN, "no calls match"))
    if got.next_before is not None:
        print(f"(more: add --before {got.next_before} for the next page)")
    return EXIT_OK


async def _export(reader: HistoryReader, query: HistoryFilter, args: Args) -> int:
    if args.csv == "-":
        await _write_csv(reader, query, args.all, sys.stdout)
        return EXIT_OK
    path, out = _create(args.csv)
    with out:
        count = await _write_csv(reader, query, args.all, out)
    print(f"{count} call(s) written to {path}", file=sys.stderr)
    return EXIT_OK


def _create(name: str) -> tuple[Path, TextIO]:
    """A new file for the export ("x": an earlier export is never overwritten)."""
    path = Path(name).expanduser()
    try:
        return path, path.open("x", newline="", encoding="utf-8")
    except FileExistsError:
        raise CliError(f"{path} exists: choose another file") from None
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_FAILED) from None


DESCRIPTION = """\
Past calls, allowed and refused, and balance enquiries (decision "service"), newest first:
when, handset, cell, prisoner, what was dialled, the decision and its reason, and for an
allowed call when it was answered and ended, its talk time, charge and recording. Read from
the database; the daemon need not run.

Dates and times are in the site's time zone ([site] timezone) unless they carry an offset:
--since 2026-12-01 starts at that local midnight, --until 2026-12-01 includes that whole day,
--since 2026-12-01T14:30 is local time, 2026-12-01T14:30Z is UTC. Times shown are UTC
(ISO 8601). One page at a time (--limit); the next page is --before the last decision id
shown. --csv FILE writes a call detail record (CDR) for spreadsheets, every field quoted and
any value starting with = + - @ prefixed with ' so that it is never run as a formula; with
--all it writes every matching call, however many."""


def register_calls(calls: Any, parents: Parents) -> None:
    """Add `calls history` to the `calls` group."""
    parser = command(
        calls, "history", parents, calls_history, "past calls, allowed and refused; CSV export",
        DESCRIPTION,
    )  # fmt: skip
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add("--prisoner", metavar="P", help="only this prisoner's calls (prison number)")
    add("--cell", metavar="CELL", help="only calls from this cell's handset")
    add("--number", metavar="N", help="only calls to this number (any form: 020 7946 0000)")
    add("--since", metavar="WHEN", help="from this date or date and time (local unless Z)")
    add("--until", metavar="WHEN", help="up to this date (included) or date and time")
    add(
        "--outcome",
        choices=call_history.OUTCOMES,  # fmt: skip
        help="allowed, refused, service (a balance enquiry); connected (accepted by the "
        "called party), not_connected, live",
    )
    add("--reason", metavar="R", choices=[r.value for r in Reason],
        help="only this reason (wrong_pin, not_approved, approved_contact, ...)")  # fmt: skip
    add("--limit", metavar="N", default=str(call_history.DEFAULT_LIMIT),
        help=f"at most N calls on a page (default {call_history.DEFAULT_LIMIT}, "
             f"at most {call_history.MAX_LIMIT})")  # fmt: skip
    add("--before", metavar="ID", help="the next page: calls older than this decision id")
    add("--csv", metavar="FILE", help="write a CSV call detail record to FILE (- for stdout)")
    add("--all", action="store_true", help="with --csv: every matching call, not one page")
