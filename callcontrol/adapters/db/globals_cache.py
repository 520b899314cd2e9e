"""The global numbers and the tariffs, cached in the daemon and reloaded when they change.

Every decision needs both tables (the numbers blocked or allowed for everyone, the rates) and
an officer changes them a few times a year. ``CachedGlobals`` (the decision's GlobalsSource)
holds them as immutable mappings with the version they were read at, and returns them without
touching the database. The version is the one row of ``globals_version``, bumped by triggers in
the change's own transaction whoever writes (the CLI, the API, the console, plain SQL:
migration 0011). A background task (``run``) reads it every POLL_S and reloads both tables when
it moved; on PostgreSQL it also LISTENs on CHANNEL, where the trigger's NOTIFY (sent at commit)
makes the reload immediate, the polling staying as the fallback. A committed change is in use
within about POLL_S, never more than a second.

Fail closed: when the version cannot be read (the database away), the last good values are
still served and the failure is logged; once no check has succeeded for MAX_AGE_S, both methods
raise GlobalsStale, and the decision refuses the call (the cell-call handler refuses on any
exception). The first load is made by whichever comes first, ``run`` or a decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.domain.model import GlobalNumber, GlobalPolicy
from callcontrol.domain.tariffs import Tariff, tariffs_by_class

log = logging.getLogger("callcontrol.globals_cache")

# The channel migration 0011's trigger notifies, with the new version as its payload.
CHANNEL = "callcontrol_globals"
# How often the version row is read: a change is in use within about this (plus one reload).
POLL_S = 0.5
# How long the values may be served without a successful check of the version; after that
# every decision fails (refused) until the database answers again.
MAX_AGE_S = 5.0
# After the LISTEN connection is lost or cannot be opened, before another is tried.
RELISTEN_S = 1.0


class GlobalsStale(Exception):
    """The cached global numbers and tariffs were not confirmed current for too long."""


@dataclass(frozen=True)
class Globals:
    """Both tables as read in one snapshot, and the version they were read at."""

    version: int
    numbers: Mapping[str, GlobalNumber]  # by number (E.164 or short code)
    tariffs: Mapping[str, Tariff]  # by destination class (tariffs_by_class)


def is_stale(checked_at: float | None, now: float, max_age_s: float) -> bool:
    """Whether values last confirmed current at ``checked_at`` (None: never) may no longer be
    used at ``now`` (both read from the same monotonic clock)."""
    return checked_at is None or now - checked_at > max_age_s


def _why(e: BaseException) -> str:
    """An exception in one line for the log: the driver's own error, without the SQL."""
    inner = getattr(e, "orig", None) or e
    return f"{type(inner).__name__}: {' '.join(str(inner).split())}"


class _Repeats:
    """A failure is logged once, until things work again."""

    def __init__(self) -> None:
        self.why = ""

    def new(self, why: str) -> bool:
        """Record a failure: True when it is not the one already logged."""
        fresh, self.why = why != self.why, why
        return fresh

    def ended(self) -> bool:
        """Record a success: True when something was failing."""
        was, self.why = bool(self.why), ""
        return was


class GlobalsReader(Protocol):
    async def version(self) -> int: ...

    async def read(self) -> Globals: ...


class Notifications(Protocol):
    async def listen(self, wake: Callable[[], None]) -> None:
        """Until cancelled: call ``wake`` whenever the version may have moved, and each time
        listening (re)starts (a change made while not listening was not notified)."""


class SqlGlobalsReader:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def version(self) -> int:
        """The version (one row read)."""
        async with self.sessions() as s:
            return await _version(s)

    async def read(self) -> Globals:
        """Both tables and their version. One snapshot on PostgreSQL (repeatable read); on
        SQLite the version is read first, so a change committed between the reads leaves a
        newer version behind, and the next check reloads."""
        async with self.sessions() as s, s.begin():
            conn = await s.connection()
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            version = await _version(s)
            g = m.GlobalNumber
            rows = (await s.execute(select(g.number, g.policy, g.privileged, g.label))).all()
            tariffs = tariffs_by_class(await ledger.list_tariffs(s))
        numbers = {
            r.number: GlobalNumber(r.number, GlobalPolicy(r.policy), bool(r.privileged), r.label)
            for r in rows
        }
        return Globals(version, MappingProxyType(numbers), MappingProxyType(tariffs))


async def _version(s: AsyncSession) -> int:
    value = await s.scalar(select(m.GlobalsVersion.version).where(m.GlobalsVersion.id == 1))
    if value is None:
        raise RuntimeError("globals_version has no row: run `callcontrol db upgrade`")
    return int(value)


class PgNotifications:
    """LISTEN on CHANNEL over a connection of its own (not the pool's: it is held for as long
    as the daemon runs), opened again after it is lost."""

    def __init__(self, url: str | URL) -> None:
        self.url = url

    async def listen(self, wake: Callable[[], None]) -> None:
        engine = make_engine(self.url, poolclass=NullPool)
        failing = _Repeats()
        try:
            while True:
                try:
                    await self._listen_once(engine, wake, failing)
                    why = "connection lost"
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    why = _why(e)
                if failing.new(why):
                    log.warning(
                        "globals cache: not listening for changes (%s); polling meanwhile, "
                        "listening again every %g s",
                        why,
                        RELISTEN_S,
                    )
                await asyncio.sleep(RELISTEN_S)
        finally:
            await engine.dispose()

    @staticmethod
    async def _listen_once(
        engine: AsyncEngine, wake: Callable[[], None], failing: _Repeats
    ) -> None:
        """Listen on one connection until it is lost."""
        async with engine.connect() as conn:
            pg = (await conn.get_raw_connection()).driver_connection
            lost = asyncio.Event()
            pg.add_termination_listener(lambda *_: lost.set())
            await pg.add_listener(CHANNEL, lambda *_: wake())
            if failing.ended():
                log.info("globals cache: listening for changes again")
            wake()
            await lost.wait()


class CachedGlobals:
    """The global numbers and tariffs for the decision, from memory (module documentation)."""

    def __init__(
        self,
        reader: GlobalsReader,
        notifications: Notifications | None = None,
        *,
        poll_s: float = POLL_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.notifications = notifications
        self.poll_s = poll_s
        self.max_age_s = max_age_s
        self.clock = clock
        self._globals: Globals | None = None
        self._checked_at: float | None = None  # clock() when the last good check began
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    @property
    def version(self) -> int | None:
        """The version of the values held (None: not loaded yet)."""
        return self._globals.version if self._globals is not None else None

    async def global_numbers(self) -> Mapping[str, GlobalNumber]:
        return (await self._current()).numbers

    async def tariffs(self) -> Mapping[str, Tariff]:
        return (await self._current()).tariffs

    async def _current(self) -> Globals:
        if self._globals is None:
            await self.check()  # the first load; raises (the call refused) if it cannot
        held = self._globals
        if held is None or is_stale(self._checked_at, self.clock(), self.max_age_s):
            raise GlobalsStale(
                f"global numbers and tariffs not confirmed current for over {self.max_age_s:g} s "
                "(database unreachable?): refusing"
            )
        return held

    async def check(self) -> bool:
        """Read the version and reload both tables if it moved (or nothing is held yet): True
        when reloaded. Raises what the reader raises; the values held are then kept,
        unconfirmed, and become stale MAX_AGE_S after the last good check."""
        async with self._lock:
            began = self.clock()
            held = self._globals
            if held is not None and await self.reader.version() == held.version:
                self._checked_at = began
                return False
            fresh = await self.reader.read()
            self._globals, self._checked_at = fresh, began
        log.info(
            "globals cache: version %d loaded: %d global number(s), %d tariff(s)",
            fresh.version,
            len(fresh.numbers),
            len(fresh.tariffs),
        )
        return True

    async def run(self) -> None:
        """Keep the values current until cancelled: a check every poll_s, and at once when
        notified. A failed check is logged (once, until one succeeds) and tried again."""
        listening = None
        if self.notifications is not None:
            listening = asyncio.create_task(
                self.notifications.listen(self._wake.set), name="globals-listen"
            )
            listening.add_done_callback(_said_if_failed)
        failing, said_stale = _Repeats(), False
        try:
            while True:
                self._wake.clear()
                try:
                    # Bounded: a check that hangs (a silent network) must not stop the next.
                    await asyncio.wait_for(self.check(), self.max_age_s)
                    if failing.ended():
                        log.info("globals cache: the database answers again")
                    said_stale = False
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if failing.new(_why(e)):
                        log.error(
                            "globals cache: cannot check the global numbers and tariffs (%s); "
                            "serving version %s for up to %g s, then refusing calls",
                            failing.why,
                            self.version,
                            self.max_age_s,
                        )
                    if not said_stale and is_stale(self._checked_at, self.clock(), self.max_age_s):
                        log.error("globals cache: values stale: every call is refused until "
                                  "the database answers")  # fmt: skip
                        said_stale = True
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                except TimeoutError:
                    pass
        finally:
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """Listening ends only when cancelled; if it died instead, the cache polls alone: say so."""
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "globals cache: stopped listening for changes (%s); polling every %g s only",
            _why(task.exception()),  # type: ignore[arg-type]  # not None: checked above
            POLL_S,
        )


def globals_source(engine: AsyncEngine) -> CachedGlobals:
    """The daemon's cache of the global numbers and tariffs of ``engine``'s database: polled,
    and on PostgreSQL listened for as well. Run its ``run`` as a task for as long as it serves."""
    notifications = PgNotifications(engine.url) if engine.dialect.name == "postgresql" else None
    return CachedGlobals(SqlGlobalsReader(session_factory(engine)), notifications)
