"""The daemon's logs: readable text lines (the default) or JSON lines (``[log] format = "json"``).

While a call is handled (its FastAGI request, its end, its settlement, its recording) the call's
Asterisk unique id is held in a context variable (``bind_call``); a JSON line then carries it
as ``"call"``. asyncio copies the context into every task created meanwhile, so a recording
ingested in the background after the call still logs under that call's id.

A JSON line: {"ts": "2026-12-05T06:15:41.123Z", "level": "INFO", "logger": "callcontrol.decision",
"message": "...", "call": "1733380000.42"} and, for an exception, "exc" with its traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_call: contextvars.ContextVar[str | None] = contextvars.ContextVar("callcontrol_call", default=None)


def bind_call(uniqueid: str | None) -> None:
    """Log what follows in this task (and the tasks it starts) as about this call."""
    _call.set(uniqueid or None)


@contextlib.contextmanager
def about_call(uniqueid: str | None) -> Iterator[None]:
    """Log the block as about this call, then go back to what was bound before (for code that
    handles several calls in turn, such as settling what Asterisk lost)."""
    token = _call.set(uniqueid or None)
    try:
        yield
    finally:
        _call.reset(token)


def current_call() -> str | None:
    return _call.get()


class JsonFormatter(logging.Formatter):
    """One JSON object a line; never raises on odd arguments (they are shown with repr)."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        ts = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        call = getattr(record, "call", None)
        if call:
            line["call"] = call
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=repr)


class _CallFilter(logging.Filter):
    """Stamps each record with the call bound in the context where it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call"):
            record.call = _call.get()
        return True


def configure(fmt: str = "text", level: str = "INFO") -> None:
    """Send the process's logs to stderr in ``fmt`` ("text" or "json") from ``level`` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CallFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Quiet whatever the level: alembic's chatter, and aiosqlite's debug lines, which repeat
    # every statement with its parameters (PIN hashes among them) from its own thread.
    for noisy in ("alembic", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
