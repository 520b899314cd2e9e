"""The benchmark itself: migrate and provision, decide and settle our calls in rounds, play the
baseline, check the database, and put the report together."""

from __future__ import annotations

import contextlib
import cProfile
import os
import platform
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.secret import generate_secret
from callcontrol.adapters.agi.server import Route
from callcontrol.adapters.db.engine import (
    check_schema_current,
    make_engine,
    normalise_url,
    redact,
    session_factory,
    upgrade,
)
from callcontrol.config import DatabaseSettings, SecuritySettings, Settings
from callcontrol_lab.bench.micro.checks import (
    _check_phase,
    _check_settled,
    check_database,
    verdict,
    watermark,
)
from callcontrol_lab.bench.micro.client import Client, _Calls
from callcontrol_lab.bench.micro.errors import BenchmarkError
from callcontrol_lab.bench.micro.provision import (
    Inmate,
    _refuse_foreign_database,
    _server_version,
    adopt,
    provision,
)
from callcontrol_lab.bench.micro.server import _serving, answer_at_once, build_routes
from callcontrol_lab.bench.micro.stats import Meter, Stats, _decisions, _local_postmaster

GOAL_DECISIONS_PER_S = 1000.0


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
    secret: str,
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
            phase = await client.play(port, batch, concurrency, secret)
        verdicts = [verdict(e, baseline=False) for e in phase.exchanges]
        outcomes.update(verdicts)
        _check_phase(f"{what}: cell-call", phase, verdicts)
        decided.add(phase, cost)
        ends_of_batch = [calls.end(r) for r in batch]
        with _profiling(profiler), meter.span() as cost:
            ends = await client.play(port, ends_of_batch, concurrency, secret)
        await _check_settled(f"{what}: call-end", ends, sessions, [r[3] for r in batch])
        settled.add(ends, cost)
        done += len(batch)
    return decided, settled, outcomes


async def _baseline(
    client: Client,
    meter: Meter,
    port: int,
    secret: str,
    inmates: Sequence[Inmate],
    calls: _Calls,
    count: int,
    conc: int,
) -> tuple[Stats, Counter[str]]:
    requests = [calls.decide(inmates[i % len(inmates)]) for i in range(count)]
    with meter.span() as cost:
        phase = await client.play(port, requests, conc, secret)
    verdicts = [verdict(e, baseline=True) for e in phase.exchanges]
    _check_phase("baseline", phase, verdicts)
    stats = Stats()
    stats.add(phase, cost)
    return stats, Counter(verdicts)


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
    history: bool = False,
) -> dict[str, Any]:
    """Run the benchmark; returns the report (see callcontrol_lab.bench.micro).

    ``database_url``: a database the benchmark may fill (migrated here; it must hold no cells
    but the benchmark's own); None: a temporary SQLite file. ``cells``: how many cells (one
    prisoner each) to provision; each round decides at most one call per cell, then settles
    them (default: ``max(10 * concurrency, 200)``, at most ``calls``). ``talk_seconds``: what
    the hangup handler reports (0: never answered). ``pin_answer``: the client's answer to
    every PIN prompt instead of the prisoner's PIN (to check that a refusal breaks the run).
    ``profile_path``: cProfile the server process during our measured phases, stats there.
    ``engine_options``: extra ``create_async_engine`` options over the daemon's (``make_engine``)
    for what-if runs, e.g. ``{"pool_pre_ping": True}`` (a ping at every checkout); recorded in
    the report.
    ``history``: the database holds a prison's history (bench/history.py, history_cache.py):
    the calls are its prisoners' (``cells`` of them, given PINs of the run's) instead of new ones,
    and the checks count only the run's own rows.
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
            if history:
                inmates = await adopt(sessions, settings, n_cells)
            else:
                inmates = await provision(sessions, settings, n_cells, tag)
            provision_s = time.perf_counter() - started
            _say(progress, f"provisioned {n_cells} cells in {provision_s:.1f} s")
            before = await watermark(sessions)
            version = await _server_version(sessions)
            made = _Calls(talk_seconds, pin_answer)
            meter = Meter(engine, await _local_postmaster(sessions))
            profiler = cProfile.Profile() if profile_path else None
            secret = generate_secret()  # the run's FastAGI secret, as the lab renders one
            async with (
                build_routes(settings, engine, sessions) as routes,
                _serving(routes, settings, secret) as server,
            ):
                _say(progress, f"ours: warm-up, {warmup} calls")
                await _ours(
                    client,
                    meter,
                    sessions,
                    server.port,
                    secret,
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
                    secret,
                    inmates,
                    made,
                    calls,
                    concurrency,
                    "ours",
                    profiler,
                )
            checks = await check_database(sessions, inmates, warmup + calls, before)
            base_report: dict[str, Any] | None = None
            if baseline:
                routes: dict[str, Route] = {cv.CELL_CALL_SCRIPT: answer_at_once}
                async with _serving(routes, settings, secret) as server:
                    _say(progress, f"baseline: warm-up, {warmup} calls")
                    await _baseline(
                        client, meter, server.port, secret, inmates, made, warmup, concurrency
                    )
                    _say(progress, f"baseline: {calls} calls, concurrency {concurrency}")
                    base, base_outcomes = await _baseline(
                        client, meter, server.port, secret, inmates, made, calls, concurrency
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
        "data": "a history's prisoners" if history else "empty: new prisoners",
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
