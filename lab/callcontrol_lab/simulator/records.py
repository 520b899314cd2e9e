"""What the daemon recorded about a simulated call, read from its database with the product's
own URL code, and a cell's SIP password from the lab's handsets file. Each answer is optional:
None when there is no usable database (a SQLite file that does not exist is never created by
looking)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from callcontrol.adapters.db.engine import database_url
from callcontrol.config import ConfigError, Settings

# How long to look for the daemon's decision, which it writes just before the hangup.
REASON_WAIT_S = 2.0


def _db_url(settings: Settings) -> str | None:
    """The database URL, or None when it is unusable or a SQLite file that does not exist."""
    from sqlalchemy.engine import make_url

    try:
        url = database_url(settings)
    except ConfigError:
        return None
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or db.startswith("file:") or not Path(db).exists():
            return None
    return url


async def _query(settings: Settings, sql: str, params: dict[str, Any]) -> list[Any] | None:
    """The first row of ``sql``, None when there is no row or no usable database."""
    url = _db_url(settings)
    if url is None:
        return None
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    try:
        engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 5})
    except Exception:
        return None
    try:
        async with asyncio.timeout(10):
            async with engine.connect() as conn:
                row = (await conn.execute(text(sql), params)).first()
                return list(row) if row is not None else None
    except Exception:
        return None
    finally:
        await engine.dispose()


async def cell_password(settings: Settings, cell: str) -> str | None:
    """The cell's SIP password from the lab's handsets file, None if unknown.

    The database keeps only a digest hash of it (which a SIP client cannot dial with); the
    lab writes the passwords it makes to [lab] handsets_file (lab/callcontrol_lab/handsets.py)."""
    from callcontrol_lab import handsets

    return handsets.recall(handsets.path_of(settings)).get(cell)


async def call_decision(
    settings: Settings, sip_call_id: str, wait_s: float = REASON_WAIT_S
) -> tuple[str | None, str | None]:
    """(outcome, reason) of the daemon's last decision on the call; waits up to ``wait_s``."""
    sql = (
        "SELECT outcome, reason FROM call_decisions WHERE sip_call_id = :cid "
        "ORDER BY id DESC LIMIT 1"
    )
    deadline = time.monotonic() + wait_s
    while True:
        if _db_url(settings) is None:
            return None, None
        row = await _query(settings, sql, {"cid": sip_call_id})
        if row:
            return row[0], row[1]
        if time.monotonic() >= deadline:
            return None, None
        await asyncio.sleep(0.25)
