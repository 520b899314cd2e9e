"""The history database, built once: a template database on the PostgreSQL server, and a
``pg_dump`` of it under ~/.cache/callcontrol for the next run's server (the benchmark starts a
new cluster every run).

``history_template(server_url, spec)`` returns the name of a database on that server holding
``spec``'s history at the schema's migration head, in the quickest way there is: the template
already on the server; else restored from the dump file; else generated (history.py), then
dumped. ``database_from_template`` copies it into a new scratch database for one measurement.
The key names the migration head, the generator's version, the spec and the day: a history is
"months until an hour ago", so a dump older than a day is made again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from callcontrol.adapters.db.engine import head_revision, normalise_url, upgrade
from callcontrol_lab.bench.history import (
    FILLED_TABLES,
    GENERATOR_VERSION,
    HistorySpec,
    build_history,
    table_counts,
)
from callcontrol_lab.bench.micro.errors import BenchmarkError
from callcontrol_lab.devtools.postgres import pg_bindir

TEMPLATE_PREFIX = "cc_history_"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "callcontrol"


def history_key(spec: HistorySpec, day: str | None = None) -> str:
    """What a cached history depends on: the schema, the generator, the spec, the day."""
    day = day or time.strftime("%Y%m%d", time.gmtime())
    parts = (head_revision(), GENERATOR_VERSION, spec.prisoners, spec.rows, spec.days, day)
    return "-".join(str(p) for p in parts)


def template_name(key: str) -> str:
    return TEMPLATE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HistoryTemplate:
    name: str  # the template database on the server
    how: str  # "template on the server" | "restored from DUMP" | "generated"
    seconds: float  # what getting it took
    details: dict[str, Any]


async def _admin(server_url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(
        normalise_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            results = [await conn.execute(text(s)) for s in statements]
            return [r.all() if r.returns_rows else [] for r in results]
    finally:
        await engine.dispose()


async def _exists(server_url: str, name: str) -> bool:
    [rows] = await _admin(server_url, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    return bool(rows)


def _libpq(u: URL) -> tuple[list[str], dict[str, str]]:
    """pg_dump's and pg_restore's connection options for ``u``; the password in the
    environment, never on the command line."""
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    env = dict(os.environ, LC_ALL="C")
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return args, env


def _tool(name: str) -> str:
    bindir = pg_bindir()
    found = bindir / name if bindir is not None else shutil.which(name)
    if found is None or not Path(found).exists():
        raise BenchmarkError(f"{name} not found: install the postgresql package")
    return str(found)


def _dump(url: URL, path: Path) -> None:
    args, env = _libpq(url)
    partial = path.with_suffix(".partial")
    subprocess.run(
        [_tool("pg_dump"), *args, "-Fc", "-Z", "1", "-f", str(partial), str(url.database)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    partial.replace(path)


def _restore(url: URL, path: Path) -> None:
    args, env = _libpq(url)
    subprocess.run(
        [_tool("pg_restore"), *args, "--no-owner", "-j", "2", "-d", str(url.database), str(path)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip


async def history_template(
    server_url: str,
    spec: HistorySpec,
    progress: Callable[[str], None] = lambda _: None,
    cache: Path | None = None,
) -> HistoryTemplate:
    """The template database holding ``spec``'s history on the server of ``server_url``
    (whose user needs CREATEDB), made if it is not there yet."""
    server = normalise_url(server_url)
    if server.get_backend_name() != "postgresql":
        raise BenchmarkError("--history needs PostgreSQL")
    key = history_key(spec)
    name = template_name(key)
    started = time.perf_counter()
    if await _exists(server_url, name):
        tables = await table_counts(server.set(database=name).render_as_string(hide_password=False))
        return HistoryTemplate(name, "template on the server", 0.0, {"key": key, "tables": tables})
    folder = cache if cache is not None else cache_dir()
    dump = folder / f"history-{key}.dump"
    building = f"{name}_building"
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    await _admin(server_url, f'CREATE DATABASE "{building}"')
    target = server.set(database=building)
    details: dict[str, Any] = {"key": key, "dump": str(dump)}
    try:
        if dump.exists():
            progress(f"history: restoring {dump}")
            await asyncio.to_thread(_restore, target, dump)
            # A dump carries no planner statistics and no visibility map: without this the
            # restored history is read with the plans of empty tables (seq scans of millions
            # of rows), which no running prison has. The generator ends the same way.
            progress("history: restored; VACUUM ANALYZE of its tables")
            await _admin(
                target.render_as_string(hide_password=False),
                *(f"VACUUM ANALYZE {t}" for t in FILLED_TABLES),
            )
            how = f"restored from {dump} (then VACUUM ANALYZE)"
            details["tables"] = await table_counts(target.render_as_string(hide_password=False))
        else:
            progress(
                f"history: generating {spec.prisoners} prisoners and about {spec.rows:,} calls, "
                f"decisions and ledger entries over {spec.days} days (once; then cached)"
            )
            url = target.render_as_string(hide_password=False)
            await upgrade(url)
            details.update(await build_history(url, spec, progress))
            how = "generated"
            progress(f"history: generated in {details['generated_s']:.0f} s; dumping to {dump}")
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for old in folder.glob("history-*.dump"):
                    old.unlink(missing_ok=True)  # yesterday's, or another schema's
                await asyncio.to_thread(_dump, target, dump)
            except (OSError, subprocess.CalledProcessError) as e:
                err = getattr(e, "stderr", "") or str(e)
                progress(f"history: not cached (the next run builds it again): {err.strip()}")
                details["dump"] = None
    except BaseException:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        raise
    # Complete only now: renamed, it is found by the next call.
    await _admin(server_url, f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    return HistoryTemplate(name, how, round(time.perf_counter() - started, 1), details)


async def database_from_template(server_url: str, template: str) -> str:
    """A new scratch database on the server, a copy of ``template``; returns its URL (drop it
    with micro.drop_scratch_database)."""
    server = normalise_url(server_url)
    name = f"cc_bench_{uuid.uuid4().hex[:12]}"
    [[(version,)]] = await _admin(server_url, "SHOW server_version_num")
    # FILE_COPY (PostgreSQL 15+): copies the files, instead of writing every page to the WAL.
    strategy = " STRATEGY = FILE_COPY" if int(version) >= 150000 else ""
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
    return server.set(database=name).render_as_string(hide_password=False)
