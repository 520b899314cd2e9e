"""The call detail record (CDR) as CSV and as JSON: the one shape staff export and read.

CSV is written with every field quoted (RFC 4180: a quote inside is doubled, so a comma, a
quote or a line break in a value cannot shift a column), and safe for spreadsheets: a value
that a spreadsheet would run as a formula (one starting, after any spaces, with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return; OWASP's "CSV injection") is prefixed with ``'`` so
that it shows as text.
A prisoner controls what is dialled, and a dialled ``=HYPERLINK(...)`` must never run on an
officer's desktop. Numbers the program writes (ids, seconds, pence) are left as they are;
E.164 numbers start with ``+`` and are therefore shown with the ``'`` in a spreadsheet, which
is what keeps them text (a spreadsheet would otherwise read ``+442079460000`` as a number and
drop the plus).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from callcontrol.services.call_history import HistoryRow

COLUMNS = (
    "decision_id", "call_id", "decided_at", "handset", "cell", "prisoner", "dialled", "number",
    "decision", "reason", "privileged", "answered_at", "ended_at", "talk_seconds",
    "charge_pence", "recording_id",
)  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, to the second: 2026-12-05T14:30:00Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def as_dict(row: HistoryRow) -> dict[str, Any]:
    """The record as plain values (times ISO 8601 UTC), in COLUMNS order."""
    values = {c: getattr(row, c) for c in COLUMNS}
    for c in ("decided_at", "answered_at", "ended_at"):
        values[c] = iso(values[c])
    return values


def neutralise(value: str) -> str:
    """A text cell that a spreadsheet will show, never evaluate."""
    return "'" + value if value.lstrip(" ").startswith(FORMULA_START) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


def csv_header() -> str:
    return csv_lines([])


def csv_lines(rows: Iterable[HistoryRow], header: bool = True) -> str:
    """The rows as CSV text (CRLF line ends), with the header line unless ``header`` is False."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        values = as_dict(row)
        writer.writerow([_cell(values[c]) for c in COLUMNS])
    return out.getvalue()
