"""A consistent copy of the database, and putting one back (for `callcontrol backup|restore`).

PostgreSQL: ``pg_dump -Fc`` of the same major version as the server (Debian keeps each
version's tools in /usr/lib/postgresql/N/bin; ``pg_dump`` on the PATH is a wrapper that may
pick another), restored with ``pg_restore --single-transaction`` (all or nothing). The
connection's password goes to the tools in their environment (PGPASSWORD), never on a command
line. The list of recordings the backup must hold is read in the very snapshot pg_dump copies
(a transaction that exports its snapshot, ``pg_dump --snapshot``), so no recording can be in
the one and not in the other.

SQLite: the online backup API (a consistent copy even while the daemon writes), restored the
same way into a new file that then takes the database's name.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from callcontrol import private_files
from callcontrol.adapters.db.engine import make_engine, normalise_url

RECORDINGS_SQL = (
    "SELECT file_name, sha256, bytes FROM recordings WHERE purged_at IS NULL ORDER BY id"
)
REVISION_SQL = "SELECT version_num FROM alembic_version"
SQLITE_TABLES_SQL = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
PG_TABLES_SQL = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
TOOL_TIMEOUT_S = 6 * 3600  # a dump of a large site takes a while; a hung one does not last


class DumpError(Exception):
    """The database could not be copied or put back (the message says why)."""


@dataclass(frozen=True)
class StoredFile:
    file_name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Dumped:
    backend: str  # postgresql | sqlite
    revision: str | None  # the schema's Alembic revision in the copy
    server_major: int | None  # PostgreSQL's major version
    recordings: Sequence[StoredFile]  # the recordings the copy says are in the store


def backend(url: str) -> str:
    return normalise_url(url).get_backend_name()


def sqlite_path(url: str) -> Path:
    db = make_url(url).database
    if not db or db == ":memory:" or db.startswith("file:"):
        raise DumpError("an in-memory SQLite database cannot be backed up or restored")
    return Path(db).expanduser()


# --- PostgreSQL's tools ------------------------------------------------------------------------


def pg_env(url: str) -> dict[str, str]:
    """The connection as libpq's environment variables (the password never on a command line)."""
    u = make_url(url)
    env = {"PGDATABASE": u.database or "", "PGCONNECT_TIMEOUT": "10"}
    for name, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                        ("PGPASSWORD", u.password)):  # fmt: skip
        if value:
            env[name] = str(value)
    ssl = u.query.get("ssl") or u.query.get("sslmode")
    if isinstance(ssl, str) and ssl:
        env["PGSSLMODE"] = {"true": "require"}.get(ssl, ssl)
    return {**os.environ, **env, "LC_ALL": "C"}


async def _run(argv: Sequence[str], env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TOOL_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DumpError(f"{Path(argv[0]).name} did not finish in {TOOL_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        why = " ".join(err.decode(errors="replace").split())[-500:] or f"exit {proc.returncode}"
        raise DumpError(f"{Path(argv[0]).name} failed: {why}")
    return out.decode(errors="replace")


async def pg_tool(name: str, major: int, bindir: Path | None = None) -> Path:
    """``name`` (pg_dump, pg_restore) of PostgreSQL ``major``: from ``bindir`` if given, else
    /usr/lib/postgresql/MAJOR/bin, else the PATH; its own --version must say ``major``."""
    candidates = (
        [bindir / name]
        if bindir
        else [Path(f"/usr/lib/postgresql/{major}/bin/{name}"), Path(shutil.which(name) or "")]
    )
    seen = []
    for path in candidates:
        if not path.name or not path.is_file():
            continue
        version = await _run([str(path), "--version"], dict(os.environ))
        found = re.search(r"\) (\d+)", version)
        if found and int(found.group(1)) == major:
            return path
        seen.append(f"{path} is {version.strip()}")
    raise DumpError(
        f"no {name} for PostgreSQL {major} (the server's version)"
        + (f": {'; '.join(seen)}" if seen else "")
        + f"; install postgresql-client-{major} or give --pg-bindir DIR"
    )


async def server_major(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            number = int((await conn.execute(text("SHOW server_version_num"))).scalar_one())
    finally:
        await engine.dispose()
    return number // 10000


# --- taking the copy ---------------------------------------------------------------------------


async def dump(url: str, to: Path, bindir: Path | None = None) -> Dumped:
    """Copy the database into the new file ``to`` (0600)."""
    private_files.create_file(to)
    if backend(url) == "sqlite":
        return await asyncio.to_thread(_dump_sqlite, sqlite_path(url), to)
    major = await server_major(url)
    pg_dump = await pg_tool("pg_dump", major, bindir)
    engine = make_engine(url)
    try:
        async with engine.connect() as plain:
            conn = await plain.execution_options(isolation_level="REPEATABLE READ")
            snapshot = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
            rows = (await conn.execute(text(RECORDINGS_SQL))).all()
            revision = (await conn.execute(text(REVISION_SQL))).scalar()
            # The transaction stays open (and its snapshot valid) while pg_dump copies it.
            await _run([str(pg_dump), "-Fc", "--snapshot", snapshot, "-f", str(to)], pg_env(url))
            await conn.rollback()
    finally:
        await engine.dispose()
    return Dumped("postgresql", revision, major, [StoredFile(*r) for r in rows])


def _sqlite_copy(source: Path, to: Path) -> None:
    """SQLite's online backup API: a consistent copy, even while others write."""
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
        with closing(sqlite3.connect(to)) as dst:
            src.backup(dst)


def _dump_sqlite(source: Path, to: Path) -> Dumped:
    if not source.exists():
        raise DumpError(f"the SQLite database {source} does not exist")
    _sqlite_copy(source, to)
    with closing(sqlite3.connect(f"file:{to}?mode=ro", uri=True)) as copy:
        rows = copy.execute(RECORDINGS_SQL).fetchall()
        revision = copy.execute(REVISION_SQL).fetchone()
    private_files.tighten(to)
    return Dumped("sqlite", revision[0] if revision else None, None, [StoredFile(*r) for r in rows])


# --- putting it back ---------------------------------------------------------------------------


async def is_empty(url: str) -> bool:
    """Whether the database holds no tables (a missing SQLite file is empty)."""
    if backend(url) == "sqlite":
        path = sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return True
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            (tables,) = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table'"
            ).fetchone()
        return int(tables) == 0
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(PG_TABLES_SQL))).scalar_one()) == 0
    finally:
        await engine.dispose()


async def restore(url: str, source: Path, *, replace: bool, bindir: Path | None = None) -> None:
    """Put the copy ``source`` into the database at ``url``, which must be empty unless
    ``replace`` (then what the copy holds replaces what is there)."""
    if not replace and not await is_empty(url):
        raise DumpError("the database is not empty: restore into an empty one (or --force)")
    if backend(url) == "sqlite":
        await asyncio.to_thread(_restore_sqlite, source, sqlite_path(url))
        return
    pg_restore = await pg_tool("pg_restore", await server_major(url), bindir)
    argv = [str(pg_restore), "--single-transaction", "--exit-on-error", "--no-owner",
            "--no-privileges", "-d", make_url(url).database or ""]  # fmt: skip
    if replace:
        argv[1:1] = ["--clean", "--if-exists"]
    await _run([*argv, str(source)], pg_env(url))


def _restore_sqlite(source: Path, target: Path) -> None:
    private_files.private_dir(target.parent)
    tmp = target.with_name(f".{target.name}.restoring")
    tmp.unlink(missing_ok=True)
    private_files.create_file(tmp)
    try:
        _sqlite_copy(source, tmp)
        for suffix in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
