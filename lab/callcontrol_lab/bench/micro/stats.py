"""What the requests cost and how long they took: CPU of the server process, of a local
PostgreSQL cluster and of the machine, the database's connections, sessions and statements,
latencies and their percentiles, summed up per kind of request."""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcontrol_lab.bench.micro.client import PhaseResult
from callcontrol_lab.measure import machine_busy_s, percentile, process_stat


def _cluster_cpu_s(postmaster: int) -> float:
    """CPU seconds used by one PostgreSQL cluster on this machine: its postmaster and every
    child, those that have exited included (the postmaster counts them as its children's)."""
    own = process_stat(postmaster)
    total = own.cpu_s if own else 0.0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = process_stat(entry.name)
            if found is not None and found.ppid == postmaster:
                total += found.cpu_s
    return total


async def _local_postmaster(sessions: async_sessionmaker[AsyncSession]) -> int | None:
    """The pid of the PostgreSQL server process when it runs on this machine (and /proc shows
    it); else None."""
    async with sessions() as s:
        if s.get_bind().dialect.name != "postgresql":
            return None
        backend = int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)
        found = process_stat(backend) if backend else None
        if found is None:
            return None
        parent = process_stat(found.ppid)
        return found.ppid if parent is not None else None


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
        return time.process_time(), pg, machine_busy_s(), *counts

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
    agi_commands: int = 0  # sent by the server, over every request
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    cost: Span = field(default_factory=Span)

    def add(self, phase: PhaseResult, span: Span | None = None) -> None:
        self.latencies_s += [e[0] for e in phase.exchanges]
        self.agi_commands += sum(e[3] for e in phase.exchanges)
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
            "p50_ms": round(percentile(ms, 50), 3),
            "p95_ms": round(percentile(ms, 95), 3),
            "p99_ms": round(percentile(ms, 99), 3),
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
            "agi_commands_per_request": round(self.agi_commands / n, 2) if n else 0.0,
        }


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
        "agi_commands_per_request": r["agi_commands_per_request"],
        "outcomes": dict(outcomes),
    }
