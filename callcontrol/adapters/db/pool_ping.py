"""A PostgreSQL pool connection is checked before use only when it has been idle a while.

SQLAlchemy's ``pool_pre_ping`` checks every connection at every checkout. With asyncpg that
check is three round trips (BEGIN, an empty statement, ROLLBACK: the dialect opens a
transaction for pgbouncer's sake), and the call path checks a connection out three times a
decision (the handset, a PIN try, the decision) and once a settlement: nine of a decision's
round trips were pings, more than its statements.

Here the check runs only on a connection that has not been used for ``idle_s`` (one second by
default), or has never been used. A connection that was used less than that ago is taken as
alive. The cost of that, on purpose: if the server goes away within that second (a restart, a
killed backend), the statement that meets the dead connection fails, and the step of the call
that ran it fails closed (a decision refuses the call; a settlement stays in the journal and is
settled by the next reconciliation). SQLAlchemy then invalidates the whole pool, so every
other connection is replaced at its next checkout, and the next calls work. Under load
(connections reused within milliseconds) no ping is sent at all; a quiet site, whose
connections sit idle, pings as before.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

# Ping a connection before use when it has been idle (in the pool) this long, in seconds.
PING_IF_IDLE_S = 1.0

_USED = "callcontrol_used_at"


def ping_when_idle(engine: AsyncEngine, idle_s: float = PING_IF_IDLE_S) -> None:
    """Install the check on ``engine``'s pool (which must not have ``pool_pre_ping``)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_USED] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        used = record.info.get(_USED)
        if used is not None and time.monotonic() - used < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as e:  # any failure: the pool drops it and takes another (or a new one)
            raise DisconnectionError(f"the pooled connection did not answer a ping: {e}") from e

    event.listen(pool, "checkin", checkin)
    event.listen(pool, "checkout", checkout)
