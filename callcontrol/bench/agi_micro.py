"""FastAGI micro-benchmark, without Asterisk: decisions per second and latency of our handler.

Our side is the daemon's FastAGI server with its two routes wired as ``callcontrol.app`` wires
them (``build_authoriser``, ``SqlCallStore``, ``CellCallHandler``, ``Settler`` on
``SqlSettlementStore``, ``CallEndHandler``), on a real database that the benchmark migrates and
fills itself through the operator's own code (``adapters/db/admin.py``, ``ledger.topup``):
cells, one prisoner each with a PIN, an approved social contact and credit. Left out, because
they are not on the path of a FastAGI request: the AMI session, the supervision API and the
recording jobs run after a settlement (which would look for audio that no call made).

The other side plays Asterisk: for each call it connects, sends the ``agi_`` environment of
``AGI(agi://.../cell-call,ENDPOINT,EXTEN,CALL_ID)`` and answers every command as Asterisk
would (``GET DATA`` with the prisoner's PIN, ``SET VARIABLE`` with ``200 result=1``, anything
else ``200 result=0``) until the server closes. By default it runs in a process of its own, so
that its Python work does not eat into the server's event loop.

Each allowed call opens a call row and reserves credit, and a prisoner may have one open call:
the calls therefore go in rounds of at most one call per cell. Each round first decides its
calls (``cell-call``, timed: decisions per second; the end of a round has fewer than
``concurrency`` calls in flight, which the default of ten cells per concurrent call keeps
small), then settles them through the real
``call-end`` route with the arguments of the hangup handler in ``dialplan/cells.conf``
(``[cc-call-end]``): accepted, talked ``talk_seconds``, the caller hung up (timed apart:
settlements per second). A call that is not allowed, or any error, breaks the run
(``BrokenBenchmark``): it is never counted as a decision. At the end, the database is checked:
every call allowed, settled and charged exactly once, no money still reserved, every account
equal to its ledger.

The baseline is the same FastAgiServer with a route that answers at once (one ``SET VARIABLE
CC_DECISION allow``), played by the same client: what the protocol, the server and the client
cost by themselves.

    .venv/bin/python -m callcontrol.bench.agi_micro --help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import multiprocessing
import os
import platform
import pstats
import re
import secrets
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.call_end import CallEndHandler
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.adapters.agi.protocol import AgiChannel
from callcontrol.adapters.agi.server import FastAgiServer, Route
from callcontrol.adapters.db import admin, ledger
from callcontrol.adapters.db import models as m
from callcontrol.adapters.db.billing_models import LedgerEntry, Reservation
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import (
    DatabaseError,
    check_schema_current,
    make_engine,
    normalise_url,
    redact,
    session_factory,
    upgrade,
)
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.config import ConfigError, DatabaseSettings, SecuritySettings, Settings
from callcontrol.services.settle import Settler

GOAL_DECISIONS_PER_S = 1000.0
CELL_PREFIX = "bench-"
CONTACT_DIALLED = "02079460000"  # as the handset dials it: a UK landline, +442079460000
CONTACT_LABEL = "benchmark contact"
CREDIT_PENCE = 5000  # the default [billing] max_balance_pence
CHANGED_BY = "agi-micro-benchmark"
PROVISION_BATCH = 100  # cells per transaction while provisioning
CLIENT_TIMEOUT_S = 30.0  # one AGI conversation, as the client sees it

# As the dialplan checks them before it bridges (dialplan/cells.conf).
_DIAL_NUMBER = re.compile(r"[+]?[0-9]{3,20}")
_DIGITS = re.compile(r"[0-9]+")


class BenchmarkError(Exception):
    """The benchmark could not be set up (bad database, bad arguments)."""


class BrokenBenchmark(BenchmarkError):
    """A call was not allowed, an AGI conversation failed, or the database disagrees with what
    the benchmark did: the figures would be meaningless, so there are none."""

    def __init__(
        self, message: str, outcomes: dict[str, int], examples: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.outcomes = dict(outcomes)
        self.examples = list(examples)


# --- the data: cells, prisoners, contacts and credit ------------------------------------------


@dataclass(frozen=True)
class Inmate:
    cell: str
    prison_number: str
    pin: str
    prisoner_id: int


def _pin(i: int) -> str:
    return f"{(1000 + i * 7919) % 10000:04d}"


async def provision(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    cells: int,
    tag: str,
    credit_pence: int = CREDIT_PENCE,
) -> list[Inmate]:
    """Add ``cells`` cells (wing B), each with one prisoner (a PIN), an approved social contact
    (CONTACT_DIALLED) and ``credit_pence`` of credit, with the operator's own functions."""
    secret = settings.pin_secret()
    site = settings.site
    inmates: list[Inmate] = []
    for start in range(0, cells, PROVISION_BATCH):
        async with sessions.begin() as s:
            for i in range(start, min(cells, start + PROVISION_BATCH)):
                cell, number, pin = f"{CELL_PREFIX}{tag}-{i:05d}", f"B{tag}{i:05d}", _pin(i)
                await admin.add_cell(s, cell, wing="B")
                prisoner = await admin.add_prisoner(
                    s, number, f"Bench Prisoner {i}", pin, cell, secret, site.pin_digits
                )
                await admin.add_contact(
                    s, number, CONTACT_DIALLED, "social", CONTACT_LABEL, CHANGED_BY,
                    site.region, site.max_social_contacts, site.max_legal_contacts,
                )  # fmt: skip
                await admin.approve_contact(s, number, CONTACT_DIALLED, CHANGED_BY, site.region)
                await ledger.topup(
                    s, number, credit_pence, f"bench-{tag}-{i}", CHANGED_BY,
                    max_balance=settings.billing.max_balance_pence,
                )  # fmt: skip
                inmates.append(Inmate(cell, number, pin, prisoner.id))
    return inmates


async def _refuse_foreign_database(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The benchmark writes cells, prisoners, calls and money: never into a real prison's."""
    async with sessions() as s:
        foreign = await s.scalar(
            select(func.count()).select_from(m.Cell).where(~m.Cell.name.startswith(CELL_PREFIX))
        )
    if foreign:
        raise BenchmarkError(
            f"the database has {foreign} cell(s) that the benchmark did not make: it writes "
            "cells, prisoners, calls and ledger entries, so give it a scratch database"
        )


# --- the server side ---------------------------------------------------------------------------


def build_routes(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Route]:
    """The daemon's two FastAGI routes, wired as callcontrol.app.Daemon.run wires them."""
    # Imported here: the client process, which imports this module too, has no use for the
    # daemon (whose imports reach pydub, which warns when there is no ffmpeg).
    from callcontrol.app import build_authoriser, utcnow

    s = settings
    auth = build_authoriser(s, SqlCallStore(sessions))
    settler = Settler(SqlSettlementStore(sessions), free_drop_s=s.billing.free_drop_s, clock=utcnow)
    handler = CellCallHandler(
        auth, PinPrompting(tries=s.site.pin_tries_per_call, digits=s.site.pin_digits)
    )
    return {cv.CELL_CALL_SCRIPT: handler, cv.CALL_END_SCRIPT: CallEndHandler(settler)}


async def answer_at_once(channel: AgiChannel) -> None:
    """The baseline route: allow at once, with one SET VARIABLE."""
    await channel.set_variable(cv.DECISION, cv.ALLOW)


def _server(routes: dict[str, Route], settings: Settings) -> FastAgiServer:
    return FastAgiServer(
        routes,
        "127.0.0.1",
        0,  # an ephemeral port: never the daemon's or the lab's
        read_timeout=settings.agi.read_timeout_s,
        session_timeout=settings.agi.session_timeout_s,
    )


@contextlib.asynccontextmanager
async def _serving(routes: dict[str, Route], settings: Settings) -> AsyncIterator[FastAgiServer]:
    server = _server(routes, settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --- the client side: Asterisk, scripted --------------------------------------------------------

# One AGI request: (script, args, channel, uniqueid, context, extension, PIN to answer).
Request = tuple[str, tuple[str, ...], str, str, str, str, str]
# One conversation: (latency in seconds, the variables set, error text or "").
Exchange = tuple[float, dict[str, str], str]


@dataclass(frozen=True)
class PhaseResult:
    wall_s: float
    exchanges: list[Exchange]
    client_cpu_s: float = 0.0  # CPU time the client process used (0 on the server's loop)


def environment(request: Request, port: int) -> bytes:
    """The agi_ environment block Asterisk 22 sends for this request."""
    script, args, channel, uniqueid, context, extension, _pin = request
    caller = args[0] if script == cv.CELL_CALL_SCRIPT and args else "unknown"
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:{port}/{script}",
        f"agi_channel: {channel}",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.0.0",
        f"agi_callerid: {caller}",
        "agi_calleridname: unknown",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {extension}",
        "agi_rdnis: unknown",
        f"agi_context: {context}",
        f"agi_extension: {extension}",
        "agi_priority: 9",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {140000000000000 + os.getpid()}",
    ]
    lines += [f"agi_arg_{i}: {value}" for i, value in enumerate(args, start=1)]
    return ("\n".join(lines) + "\n\n").encode()


def _unquote(value: str) -> str:
    """A SET VARIABLE value as res_agi reads it: double quotes off, backslash escapes undone."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def reply_to(command: str, pin: str, variables: dict[str, str]) -> bytes:
    """What Asterisk answers to ``command`` on a live channel (keeping the variables set)."""
    if command.startswith("GET DATA "):
        return f"200 result={pin}\n".encode()
    if command.startswith("SET VARIABLE "):
        name, _, value = command[len("SET VARIABLE ") :].partition(" ")
        variables[name] = _unquote(value)
        return b"200 result=1\n"
    if command == "HANGUP":
        return b"200 result=1\n"
    return b"200 result=0\n"  # STREAM FILE, EXEC, ANSWER, VERBOSE, ...


async def converse(port: int, request: Request, timeout_s: float = CLIENT_TIMEOUT_S) -> Exchange:
    """One AGI request from connect to the server's close; never raises."""
    variables: dict[str, str] = {}
    started = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(environment(request, port))
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):  # EOF: the server closed, the AGI is over
                    break
                writer.write(reply_to(line.decode().rstrip("\r\n"), request[6], variables))
                await writer.drain()
        return time.perf_counter() - started, variables, ""
    except TimeoutError:
        return time.perf_counter() - started, variables, f"no close within {timeout_s:g}s"
    except (OSError, ValueError) as e:  # ValueError: undecodable or overlong lines
        return time.perf_counter() - started, variables, f"{type(e).__name__}: {e}"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def play(port: int, requests: Sequence[Request], concurrency: int) -> PhaseResult:
    """Play ``requests`` with ``concurrency`` calls at a time; results in request order."""
    results: list[Exchange | None] = [None] * len(requests)
    queue = iter(range(len(requests)))

    async def worker() -> None:
        for i in queue:
            results[i] = await converse(port, requests[i])

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(requests))))))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return PhaseResult(wall, [r for r in results if r is not None], cpu)


def play_in_process(port: int, requests: Sequence[Request], concurrency: int) -> PhaseResult:
    """``play`` on an event loop of its own (the entry point of the client process)."""
    return asyncio.run(play(port, requests, concurrency))


class Client:
    """Plays the requests in a separate process (the default) or on the server's own loop."""

    def __init__(self, separate_process: bool) -> None:
        self._pool: Executor | None = None
        if separate_process:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)

    async def play(self, port: int, requests: Sequence[Request], concurrency: int) -> PhaseResult:
        """Play the requests: in the client process, or here on the server's own loop."""
        if not requests:
            return PhaseResult(0.0, [])
        if self._pool is None:  # its CPU is the server process's: not told apart
            return replace(await play(port, requests, concurrency), client_cpu_s=0.0)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, play_in_process, port, list(requests), concurrency
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


# --- the calls ---------------------------------------------------------------------------------


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (/proc/stat; 0 without it)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / _TICK


def _proc_stat(pid: int | str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its children that have exited) from
    /proc/PID/stat; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # from field 3 (state) on
    try:
        return int(fields[1]), sum(int(x) for x in fields[11:15]) / _TICK  # ppid; u/s/cu/cs
    except (IndexError, ValueError):
        return None


def _cluster_cpu_s(postmaster: int) -> float:
    """CPU seconds used by one PostgreSQL cluster on this machine: its postmaster and every
    child, those that have exited included (the postmaster counts them as its children's)."""
    own = _proc_stat(postmaster)
    total = own[1] if own else 0.0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _proc_stat(entry.name)
            if found is not None and found[0] == postmaster:
                total += found[1]
    return total


async def _local_postmaster(sessions: async_sessionmaker[AsyncSession]) -> int | None:
    """The pid of the PostgreSQL server process when it runs on this machine (and /proc shows
    it); else None."""
    async with sessions() as s:
        if s.get_bind().dialect.name != "postgresql":
            return None
        backend = int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)
        found = _proc_stat(backend) if backend else None
        if found is None:
            return None
        parent = _proc_stat(found[0])
        return found[0] if parent is not None else None


class Meter:
    """What a span of the benchmark cost: CPU seconds of this (the server's) process, of the
    PostgreSQL cluster when it runs on this machine, of the whole machine; and the database
    connections the engine opened, the sessions (pool checkouts) and the SQL statements."""

    def __init__(self, engine: AsyncEngine | None = None, postmaster: int | None = None) -> None:
        self.connects = self.checkouts = self.statements = 0
        self._postmaster = postmaster
        if engine is not None:
            event.listen(engine.sync_engine, "connect", self._on_connect)
            event.listen(engine.sync_engine.pool, "checkout", self._on_checkout)
            event.listen(engine.sync_engine, "before_cursor_execute", self._on_statement)

    def _on_connect(self, *_: Any) -> None:
        self.connects += 1

    def _on_checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def _on_statement(self, *_: Any) -> None:
        self.statements += 1

    def read(self) -> tuple[float, float, float, int, int, int]:
        pg = _cluster_cpu_s(self._postmaster) if self._postmaster else 0.0
        counts = self.connects, self.checkouts, self.statements
        return time.process_time(), pg, _machine_busy_s(), *counts

    @contextlib.contextmanager
    def span(self) -> Iterator[Span]:
        span = Span()
        before = self.read()
        try:
            yield span
        finally:
            after = self.read()
            span.server_cpu_s, span.postgres_cpu_s, span.machine_busy_s = (
                after[i] - before[i] for i in range(3)
            )
            span.db_connects, span.db_checkouts, span.db_statements = (
                after[i] - before[i] for i in range(3, 6)
            )


@dataclass
class Span:
    server_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    machine_busy_s: float = 0.0
    db_connects: int = 0
    db_checkouts: int = 0  # sessions that used a connection: each has its BEGIN and end
    db_statements: int = 0  # SQL statements SQLAlchemy sent (not BEGIN, COMMIT, pings)


@dataclass
class Stats:
    """One kind of request, measured: latencies, the wall time of the phases they ran in, and
    what they cost meanwhile (``Span``s added up; the client's CPU from the client)."""

    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    cost: Span = field(default_factory=Span)

    def add(self, phase: PhaseResult, span: Span | None = None) -> None:
        self.latencies_s += [e[0] for e in phase.exchanges]
        self.wall_s += phase.wall_s
        self.client_cpu_s += phase.client_cpu_s
        if span is not None:
            c = self.cost
            c.server_cpu_s += span.server_cpu_s
            c.postgres_cpu_s += span.postgres_cpu_s
            c.machine_busy_s += span.machine_busy_s
            c.db_connects += span.db_connects
            c.db_checkouts += span.db_checkouts
            c.db_statements += span.db_statements

    def report(self) -> dict[str, Any]:
        n, wall, c = len(self.latencies_s), self.wall_s, self.cost
        ms = sorted(x * 1000 for x in self.latencies_s)

        def share(cpu_s: float) -> float:  # CPU seconds per second: 1.0 is one core kept busy
            return round(cpu_s / wall, 3) if wall > 0 else 0.0

        other = c.machine_busy_s - c.server_cpu_s - c.postgres_cpu_s - self.client_cpu_s
        return {
            "count": n,
            "wall_s": round(wall, 4),
            "per_s": round(n / wall, 1) if wall > 0 else 0.0,
            "p50_ms": round(_percentile(ms, 50), 3),
            "p95_ms": round(_percentile(ms, 95), 3),
            "p99_ms": round(_percentile(ms, 99), 3),
            "max_ms": round(ms[-1], 3) if ms else 0.0,
            "mean_ms": round(sum(ms) / n, 3) if n else 0.0,
            "cpu": {
                "server": share(c.server_cpu_s),
                "client": share(self.client_cpu_s),
                "postgres": share(c.postgres_cpu_s),
                "other": share(max(0.0, other)),  # the rest of the machine: other work
                "machine": share(c.machine_busy_s),
                "server_ms_per_request": round(c.server_cpu_s * 1000 / n, 3) if n else 0.0,
                "postgres_ms_per_request": round(c.postgres_cpu_s * 1000 / n, 3) if n else 0.0,
            },
            "db_connections_opened": c.db_connects,
            "db_checkouts_per_request": round(c.db_checkouts / n, 2) if n else 0.0,
            "db_statements_per_request": round(c.db_statements / n, 2) if n else 0.0,
        }


def _percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return float(sorted_values[int(rank) - 1])


def verdict(exchange: Exchange, *, baseline: bool) -> str:
    """ "allow" when the dialplan would bridge this call (for the baseline: CC_DECISION allow);
    else what went wrong: "refuse:REASON" or "error:..."."""
    _latency, variables, error = exchange
    if error:
        return f"error:{error}"
    decision = variables.get(cv.DECISION, "")
    if decision != cv.ALLOW:  # no reason: the handler failed (internal error, see its log)
        return f"refuse:{variables.get(cv.REASON) or 'no reason given'}"
    if baseline:
        return "allow"
    number, limit = variables.get(cv.NUMBER, ""), variables.get(cv.LIMIT_MS, "")
    if not _DIAL_NUMBER.fullmatch(number):
        return f"error:allowed without a dialable CC_NUMBER {number!r}"
    if not _DIGITS.fullmatch(limit) or int(limit) < 1000:
        return f"error:allowed without a usable CC_LIMIT_MS {limit!r}"
    return "allow"


def _check_phase(what: str, phase: PhaseResult, verdicts: Sequence[str]) -> None:
    bad = [v for v in verdicts if v != "allow"]
    if bad:
        raise BrokenBenchmark(
            f"{what}: {len(bad)} of {len(verdicts)} calls were not allowed or failed; a refusal "
            "means the benchmark is broken (its data, or the code), not a decision",
            dict(Counter(verdicts)),
            sorted(set(bad))[:5],
        )


async def _check_settled(
    what: str,
    phase: PhaseResult,
    sessions: async_sessionmaker[AsyncSession],
    uniqueids: Sequence[str],
) -> None:
    """Every call-end request ended well, and (since the server closes the socket whatever
    happened) every call of the round is settled in the database."""
    errors = [e[2] for e in phase.exchanges if e[2]]
    if errors:
        raise BrokenBenchmark(
            f"{what}: {len(errors)} of {len(phase.exchanges)} call-end requests failed",
            dict(Counter(f"error:{e}" for e in errors)),
            sorted(set(errors))[:5],
        )
    async with sessions() as s:
        unsettled = list(
            await s.scalars(
                select(m.Call.uniqueid).where(
                    m.Call.uniqueid.in_(uniqueids), m.Call.settled_at.is_(None)
                )
            )
        )
    if unsettled:
        raise BrokenBenchmark(
            f"{what}: {len(unsettled)} of {len(uniqueids)} calls were not settled (the call-end "
            "route failed: see the daemon's log)",
            {"settled": len(uniqueids) - len(unsettled), "not settled": len(unsettled)},
            unsettled[:5],
        )


@dataclass
class _Calls:
    """Makes each call's AGI requests, with a channel and uniqueid of its own."""

    talk_seconds: int
    pin_answer: str | None
    base: int = field(default_factory=lambda: int(time.time()))
    seq: int = 0

    def decide(self, inmate: Inmate) -> Request:
        self.seq += 1
        channel = f"PJSIP/{inmate.cell}-{self.seq:08x}"
        uniqueid = f"{self.base}.{self.seq}"
        call_id = f"{uuid.uuid4().hex}@127.0.0.1"
        args = (inmate.cell, CONTACT_DIALLED, call_id)
        pin = inmate.pin if self.pin_answer is None else self.pin_answer
        return (cv.CELL_CALL_SCRIPT, args, channel, uniqueid, "cells", CONTACT_DIALLED, pin)

    def end(self, decided: Request) -> Request:
        """The hangup handler's request ([cc-call-end]): accepted, talked, the caller hung up."""
        channel, uniqueid = decided[2], decided[3]
        ended = time.time()
        if self.talk_seconds > 0:
            accepted, status = f"{ended - self.talk_seconds:.3f}", "ANSWER"
        else:
            accepted, status = "", "NOANSWER"
        args = (uniqueid, accepted, f"{ended:.3f}", status, "16", channel)
        return (cv.CALL_END_SCRIPT, args, channel, uniqueid, "cc-call-end", "s", "")


@contextlib.contextmanager
def _profiling(profiler: cProfile.Profile | None) -> Iterator[None]:
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


async def _ours(
    client: Client,
    meter: Meter,
    sessions: async_sessionmaker[AsyncSession],
    port: int,
    inmates: Sequence[Inmate],
    calls: _Calls,
    count: int,
    concurrency: int,
    what: str,
    profiler: cProfile.Profile | None = None,
) -> tuple[Stats, Stats, Counter[str]]:
    """``count`` calls in rounds of one call per cell: decide them all, then settle them all."""
    decided, settled, outcomes = Stats(), Stats(), Counter[str]()
    done = 0
    while done < count:
        batch = [calls.decide(inmates[i]) for i in range(min(len(inmates), count - done))]
        with _profiling(profiler), meter.span() as cost:
            phase = await client.play(port, batch, concurrency)
        verdicts = [verdict(e, baseline=False) for e in phase.exchanges]
        outcomes.update(verdicts)
        _check_phase(f"{what}: cell-call", phase, verdicts)
        decided.add(phase, cost)
        ends_of_batch = [calls.end(r) for r in batch]
        with _profiling(profiler), meter.span() as cost:
            ends = await client.play(port, ends_of_batch, concurrency)
        await _check_settled(f"{what}: call-end", ends, sessions, [r[3] for r in batch])
        settled.add(ends, cost)
        done += len(batch)
    return decided, settled, outcomes


async def _baseline(
    client: Client,
    meter: Meter,
    port: int,
    inmates: Sequence[Inmate],
    calls: _Calls,
    count: int,
    conc: int,
) -> tuple[Stats, Counter[str]]:
    requests = [calls.decide(inmates[i % len(inmates)]) for i in range(count)]
    with meter.span() as cost:
        phase = await client.play(port, requests, conc)
    verdicts = [verdict(e, baseline=True) for e in phase.exchanges]
    _check_phase("baseline", phase, verdicts)
    stats = Stats()
    stats.add(phase, cost)
    return stats, Counter(verdicts)


# --- checking the database afterwards ----------------------------------------------------------


async def check_database(
    sessions: async_sessionmaker[AsyncSession], inmates: Sequence[Inmate], expected_calls: int
) -> dict[str, Any]:
    """What the database holds for the benchmark's prisoners; BrokenBenchmark if it is not
    every call allowed, settled and charged once, with no money still held."""
    ids = [i.prisoner_id for i in inmates]
    async with sessions() as s:
        decisions = dict(
            (
                await s.execute(
                    select(m.CallDecision.outcome, func.count())
                    .where(m.CallDecision.prisoner_id.in_(ids))
                    .group_by(m.CallDecision.outcome)
                )
            ).all()
        )
        of_ours = m.Call.prisoner_id.in_(ids)
        calls = await s.scalar(select(func.count()).select_from(m.Call).where(of_ours))
        count_calls = select(func.count()).select_from(m.Call).where(of_ours)
        settled = await s.scalar(count_calls.where(m.Call.settled_at.is_not(None)))
        still_open = await s.scalar(count_calls.where(m.Call.ended_at.is_(None)))
        charged_calls, charged_pence = (
            await s.execute(
                select(func.count(), func.coalesce(func.sum(m.Call.charge_pence), 0)).where(
                    of_ours, m.Call.charge_pence > 0
                )
            )
        ).one()
        reservations = dict(
            (
                await s.execute(
                    select(Reservation.status, func.count())
                    .where(Reservation.prisoner_id.in_(ids))
                    .group_by(Reservation.status)
                )
            ).all()
        )
        charges, charge_calls, charge_sum = (
            await s.execute(
                select(
                    func.count(),
                    func.count(func.distinct(LedgerEntry.call_id)),
                    func.coalesce(func.sum(LedgerEntry.amount_pence), 0),
                ).where(LedgerEntry.prisoner_id.in_(ids), LedgerEntry.kind == "charge")
            )
        ).one()
        mismatched: list[str] = []
        for pid in ids:
            try:
                await ledger.verify_account(s, pid)
            except ledger.AccountMismatch as e:
                mismatched.append(str(e))
    checks = {
        "decisions_allowed": int(decisions.get("allow", 0)),
        "decisions_refused": int(decisions.get("refuse", 0)),
        "calls": int(calls or 0),
        "calls_settled": int(settled or 0),
        "calls_open": int(still_open or 0),
        "calls_charged": int(charged_calls),
        "reservations": {str(k): int(v) for k, v in reservations.items()},
        "charge_entries": int(charges),
        "charge_entries_calls": int(charge_calls),
        "charged_pence": int(charged_pence),
        "ledger_charged_pence": -int(charge_sum),
        "accounts_verified": len(ids) - len(mismatched),
    }
    problems = []
    if checks["decisions_allowed"] != expected_calls or checks["decisions_refused"]:
        problems.append("decisions stored")
    if not checks["calls"] == checks["calls_settled"] == expected_calls or checks["calls_open"]:
        problems.append("calls opened and settled")
    if checks["reservations"] != {"settled": expected_calls}:
        problems.append("reservations")
    if not checks["charge_entries"] == checks["charge_entries_calls"] == checks["calls_charged"]:
        problems.append("one charge entry per charged call")
    if checks["charged_pence"] != checks["ledger_charged_pence"]:
        problems.append("charges on the calls and in the ledger")
    if mismatched:
        problems.append("accounts")
    if problems:
        raise BrokenBenchmark(
            f"the database disagrees with the benchmark ({', '.join(problems)}): {checks}",
            {"database": 1},
            mismatched[:5],
        )
    return checks


# --- the database -------------------------------------------------------------------------------


async def _admin_sql(url: str, sql: str) -> None:
    engine = create_async_engine(
        normalise_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def create_scratch_database(server_url: str) -> str:
    """A new, empty PostgreSQL database on the server of ``server_url``; returns its URL."""
    u = normalise_url(server_url)
    if u.get_backend_name() != "postgresql":
        raise BenchmarkError("--scratch needs a PostgreSQL URL")
    name = f"cc_bench_{uuid.uuid4().hex[:12]}"
    await _admin_sql(u.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    await _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _server_version(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            return str(await s.scalar(text("SHOW server_version")))
        return str(await s.scalar(text("SELECT sqlite_version()")))


# --- the benchmark -----------------------------------------------------------------------------


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


async def run_micro(
    database_url: str | None = None,
    *,
    calls: int = 5000,
    concurrency: int = 50,
    warmup: int = 500,
    cells: int | None = None,
    talk_seconds: int = 30,
    separate_process: bool = True,
    baseline: bool = True,
    pin_answer: str | None = None,
    profile_path: str | None = None,
    engine_options: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns the report (see the module documentation).

    ``database_url``: a database the benchmark may fill (migrated here; it must hold no cells
    but the benchmark's own); None: a temporary SQLite file. ``cells``: how many cells (one
    prisoner each) to provision; each round decides at most one call per cell, then settles
    them (default: ``max(10 * concurrency, 200)``, at most ``calls``). ``talk_seconds``: what
    the hangup handler reports (0: never answered). ``pin_answer``: the client's answer to
    every PIN prompt instead of the prisoner's PIN (to check that a refusal breaks the run).
    ``profile_path``: cProfile the server process during our measured phases, stats there.
    ``engine_options``: extra ``create_async_engine`` options over the daemon's (``make_engine``)
    for what-if runs, e.g. ``{"pool_pre_ping": False}``; recorded in the report.
    ``separate_process`` starts the client with multiprocessing's "spawn": a script that calls
    this needs the usual ``if __name__ == "__main__":`` guard.
    Raises BrokenBenchmark when any call is not allowed or fails, BenchmarkError when it
    cannot be set up.
    """
    if calls < 1 or concurrency < 1 or warmup < 0 or talk_seconds < 0:
        raise BenchmarkError("calls and concurrency must be at least 1; warmup, talk_seconds 0+")
    n_cells = cells if cells is not None else min(max(10 * concurrency, 200), calls)
    if n_cells < 1:
        raise BenchmarkError("cells must be at least 1")
    if n_cells < concurrency:
        _say(progress, f"note: {n_cells} cells limit the concurrency to {n_cells} per round")
    workdir = Path(tempfile.mkdtemp(prefix="callcontrol-agi-micro-"))
    try:
        url = database_url or f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
        url = normalise_url(url).render_as_string(hide_password=False)
        settings = Settings(
            database=DatabaseSettings(url=url),
            security=SecuritySettings(pin_secret=secrets.token_hex(24)),
            base_dir=workdir,
        )
        _say(progress, f"database {redact(url)}: migrating")
        await upgrade(url)
        # As the daemon opens it (pool, timeouts, SQLite pragmas), unless told otherwise.
        engine = make_engine(url, **(engine_options or {}))
        client = Client(separate_process)
        try:
            await check_schema_current(engine)
            sessions = session_factory(engine)
            await _refuse_foreign_database(sessions)
            tag = secrets.token_hex(3)
            started = time.perf_counter()
            inmates = await provision(sessions, settings, n_cells, tag)
            provision_s = time.perf_counter() - started
            _say(progress, f"provisioned {n_cells} cells in {provision_s:.1f} s")
            version = await _server_version(sessions)
            made = _Calls(talk_seconds, pin_answer)
            meter = Meter(engine, await _local_postmaster(sessions))
            profiler = cProfile.Profile() if profile_path else None
            async with _serving(build_routes(settings, sessions), settings) as server:
                _say(progress, f"ours: warm-up, {warmup} calls")
                await _ours(
                    client,
                    meter,
                    sessions,
                    server.port,
                    inmates,
                    made,
                    warmup,
                    concurrency,
                    "warm-up",
                )
                _say(progress, f"ours: {calls} calls, concurrency {concurrency}")
                decided, settled, outcomes = await _ours(
                    client,
                    meter,
                    sessions,
                    server.port,
                    inmates,
                    made,
                    calls,
                    concurrency,
                    "ours",
                    profiler,
                )
            checks = await check_database(sessions, inmates, warmup + calls)
            base_report: dict[str, Any] | None = None
            if baseline:
                routes: dict[str, Route] = {cv.CELL_CALL_SCRIPT: answer_at_once}
                async with _serving(routes, settings) as server:
                    _say(progress, f"baseline: warm-up, {warmup} calls")
                    await _baseline(client, meter, server.port, inmates, made, warmup, concurrency)
                    _say(progress, f"baseline: {calls} calls, concurrency {concurrency}")
                    base, base_outcomes = await _baseline(
                        client, meter, server.port, inmates, made, calls, concurrency
                    )
                base_report = _decisions(base, base_outcomes)
        finally:
            client.close()
            await engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if profiler is not None and profile_path:
        profiler.dump_stats(profile_path)
    ours = _decisions(decided, outcomes)
    settle = settled.report()
    pair_wall = decided.wall_s + settled.wall_s
    ours["settlements_per_s"] = settle["per_s"]
    ours["settle"] = settle
    ours["pairs_per_s"] = round(calls / pair_wall, 1) if pair_wall > 0 else 0.0
    report: dict[str, Any] = {
        "benchmark": "agi_micro",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": make_url(url).get_backend_name(),
        "database_version": version,
        "database_url": redact(url),
        "calls": calls,
        "concurrency": concurrency,
        "warmup": warmup,
        "cells": n_cells,
        "rounds": -(-calls // n_cells),
        "talk_seconds": talk_seconds,
        "client": "separate process" if separate_process else "same event loop",
        "engine_options": {k: repr(v) for k, v in (engine_options or {}).items()},
        "provision_s": round(provision_s, 2),
        "ours": ours,
        "baseline": base_report,
        "ratio": (
            round(ours["decisions_per_s"] / base_report["decisions_per_s"], 4)
            if base_report and base_report["decisions_per_s"]
            else None
        ),
        "goal_decisions_per_s": GOAL_DECISIONS_PER_S,
        "goal_met": ours["decisions_per_s"] >= GOAL_DECISIONS_PER_S,
        "checks": checks,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
    }
    if profile_path:
        report["profile"] = profile_path
    return report


def _decisions(stats: Stats, outcomes: Counter[str]) -> dict[str, Any]:
    r = stats.report()
    return {
        "decisions": r["count"],
        "decisions_per_s": r["per_s"],
        "p50_ms": r["p50_ms"],
        "p95_ms": r["p95_ms"],
        "p99_ms": r["p99_ms"],
        "max_ms": r["max_ms"],
        "mean_ms": r["mean_ms"],
        "wall_s": r["wall_s"],
        "cpu": r["cpu"],
        "db_connections_opened": r["db_connections_opened"],
        "db_checkouts_per_request": r["db_checkouts_per_request"],
        "db_statements_per_request": r["db_statements_per_request"],
        "outcomes": dict(outcomes),
    }


# --- output --------------------------------------------------------------------------------------


def format_table(report: dict[str, Any]) -> str:
    """The report for people."""
    ours, base, settle = report["ours"], report["baseline"], report["ours"]["settle"]
    head = (
        f"FastAGI micro-benchmark: {report['calls']} calls after {report['warmup']} warm-up, "
        f"concurrency {report['concurrency']}, {report['cells']} cells "
        f"({report['rounds']} round(s)), client in a {report['client']}\n"
        f"database: {report['database']} {report['database_version']} "
        f"({report['database_url']}); {report['machine']['cpus']} CPUs, "
        f"Python {report['machine']['python']}"
    )
    if report["engine_options"]:
        head += f"\nWHAT-IF: engine options over the daemon's: {report['engine_options']}"
    measured = [
        ("ours: cell-call (decisions)", ours["decisions"], ours["decisions_per_s"], ours),
        ("ours: call-end (settlements)", settle["count"], settle["per_s"], settle),
    ]
    if base is not None:
        measured.append(
            ("baseline: answers at once", base["decisions"], base["decisions_per_s"], base)
        )
    rows = [head, ""]
    rows.append(
        f"{'':31s}{'requests':>9s}{'per s':>9s}{'p50 ms':>9s}{'p95 ms':>9s}{'p99 ms':>9s}"
        f"{'max ms':>9s}"
    )
    for name, count, rate, r in measured:
        rows.append(
            f"{name:31s}{count:9d}{rate:9.1f}{r['p50_ms']:9.2f}{r['p95_ms']:9.2f}"
            f"{r['p99_ms']:9.2f}{r['max_ms']:9.2f}"
        )
    rows.append(
        f"{'ours: decide + settle (pairs)':31s}{ours['decisions']:9d}{ours['pairs_per_s']:9.1f}"
    )
    if base is not None:
        rows.append(f"ours / baseline, decisions per second: {report['ratio']:.3f}")
    rows += [
        "",
        f"{'what it cost, per request':31s}{'server':>9s}{'pg':>9s}{'|':>3s}{'server':>8s}"
        f"{'client':>8s}{'pg':>8s}{'other':>8s}{'|':>3s}{'sessions':>9s}{'stmts':>7s}{'conns':>7s}",
        f"{'':31s}{'CPU ms':>9s}{'CPU ms':>9s}{'|':>3s}{'CPU share of the machine, cores':>32s}"
        f"{'|':>3s}{'database, per request':>23s}",
    ]
    for name, _count, _rate, r in measured:
        c = r["cpu"]
        rows.append(
            f"{name:31s}{c['server_ms_per_request']:9.2f}{c['postgres_ms_per_request']:9.2f}"
            f"{'|':>3s}{c['server']:8.2f}{c['client']:8.2f}{c['postgres']:8.2f}{c['other']:8.2f}"
            f"{'|':>3s}{r['db_checkouts_per_request']:9.1f}{r['db_statements_per_request']:7.1f}"
            f"{r['db_connections_opened']:7d}"
        )
    rows += [
        f"(cores: CPU seconds per second of the phases, 1.00 = one core busy, of "
        f"{report['machine']['cpus']}; server = the FastAGI server's process, client = the "
        "scripted Asterisk, pg = the PostgreSQL cluster (when on this machine), other = the "
        "rest of the machine; sessions = pool checkouts, stmts = SQL statements (BEGIN, COMMIT "
        "and pings not counted), conns = new connections in all)",
        "",
    ]
    goal = report["goal_decisions_per_s"]
    rows.append(
        f"goal, {goal:.0f} decisions/s: {'met' if report['goal_met'] else 'NOT met'} "
        f"({ours['decisions_per_s']:.0f}/s)"
    )
    c = report["checks"]
    rows.append(
        f"checked in the database: {c['calls']} calls allowed and settled, {c['charge_entries']} "
        f"charged once ({c['charged_pence']}p), reservations {c['reservations']}, "
        f"{c['accounts_verified']} accounts equal to their ledger"
    )
    return "\n".join(rows)


def profile_summary(path: str, top: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


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
    p = argparse.ArgumentParser(
        prog="python -m callcontrol.bench.agi_micro",
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
            "  python -m callcontrol.bench.agi_micro                # SQLite, a temporary file\n"
            "  python -m callcontrol.bench.agi_micro --scratch --json /tmp/agi-micro.json \\\n"
            "      --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres\n"
            "  python -m callcontrol.bench.agi_micro --calls 40 --concurrency 5 --warmup 0"
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
    if args.scratch:
        if not url:
            raise BenchmarkError("--scratch needs --database-url (a PostgreSQL server)")
        scratch_url = url = await create_scratch_database(url)
        progress(f"created scratch database {redact(url)}")
    try:
        return await run_micro(
            url,
            calls=args.calls,
            concurrency=args.concurrency,
            warmup=args.warmup,
            cells=args.cells,
            talk_seconds=args.talk_seconds,
            separate_process=not args.same_loop,
            baseline=not args.no_baseline,
            profile_path=args.profile,
            progress=progress,
        )
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


if __name__ == "__main__":
    sys.exit(main())
