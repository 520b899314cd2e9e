"""The `recordings` and `audit` commands, run in-process against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.tables import AuditEntry, ChainEntry, Recording, utcnow
from callcontrol.services import recordings as store
from tests.db.conftest import Cli, Result
from tests.db.test_recordings import add_call, alter_byte, drop_guards, execute, make_wav

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


def on_db(cli: Cli, work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(cli.url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "recordings"  # the default store_dir under CALLCONTROL_BASE_DIR


def recorded(cli: Cli, store_dir: Path, tmp_path: Path, days_ago: float, tone: float) -> Recording:
    async def work(sessions: Sessions) -> Recording:
        call_id = await add_call(sessions, utcnow() - timedelta(days=days_ago))
        wav = make_wav(tmp_path / "spool" / f"{call_id}.wav", seconds=1.0, left=tone)
        rec = await store.ingest(sessions, store_dir, call_id, wav, 24000)
        assert rec is not None
        return rec

    return on_db(cli, work)


@pytest.fixture
def two(cli: Cli, store_dir: Path, tmp_path: Path) -> tuple[Recording, Recording]:
    """Two recordings: one 100 days old, one from yesterday."""
    return (
        recorded(cli, store_dir, tmp_path, 100, 700.0),
        recorded(cli, store_dir, tmp_path, 1, 900.0),
    )


def refused(result: Result, *words: str, status: int = 2) -> None:
    """The exit status, one line on stderr, nothing on stdout."""
    assert result.status == status, result
    assert result.out == ""
    assert result.err.startswith("callcontrol: error: ") and result.err.count("\n") == 1, result
    for word in words:
        assert word in result.err, result


def written(cli: Cli) -> tuple[Any, ...]:
    """What the commands may write: chain entries, purges, audit entries."""
    return (
        cli.query(select(func.count()).select_from(ChainEntry))[0][0],
        cli.query(select(Recording.id, Recording.purged_at).order_by(Recording.id)),
        cli.query(select(func.count()).select_from(AuditEntry))[0][0],
    )


def test_list_verify_export_purge_and_audit(
    cli: Cli, two: tuple[Recording, Recording], store_dir: Path, tmp_path: Path
) -> None:
    old, new = two
    rows = cli.ok("recordings", "list", "--json").json()
    assert [r["id"] for r in rows] == [new.id, old.id]  # latest first
    assert rows[0]["sha256"] == new.sha256 and rows[0]["channels"] == 2
    assert rows[0]["prisoner"].startswith("RP") and rows[0]["codec"] == "opus"
    prisoner = rows[1]["prisoner"]
    only = cli.ok("recordings", "list", "--prisoner", prisoner, "--json").json()
    assert [r["id"] for r in only] == [old.id]
    assert [r["id"] for r in cli.ok("recordings", "list", "--limit", "1", "--json").json()] == [
        new.id
    ]
    text = cli.ok("recordings", "list").out
    assert text.startswith("ID") and new.sha256[:12] in text and "0:01" in text

    assert cli.ok("recordings", "verify").out == (
        "chain of 2 recordings verified (2 entries; 0 purged, with their deletion receipts)\n"
    )

    out = tmp_path / "evidence.ogg"
    done = cli.ok(
        "recordings", "export", str(old.id), "--to", str(out), "--reason", "court order 7",
        "--by", "clerk", "--json",
    ).json()  # fmt: skip
    assert done["to"] == str(out) and out.read_bytes() == (store_dir / old.file_name).read_bytes()

    dry = cli.ok("recordings", "purge", "--dry-run", "--by", "clerk")
    assert dry.out.startswith("would purge 1 recording(s) that started more than 90 days ago")
    assert (store_dir / old.file_name).exists()
    purged = cli.ok("recordings", "purge", "--by", "clerk", "--json").json()
    assert purged["dry_run"] is False and purged["older_than_days"] == 90
    [receipt] = purged["receipts"]
    assert (receipt["recording_id"], receipt["sha256"], receipt["by"], receipt["file"]) == (
        old.id, old.sha256, "clerk", "deleted",
    )  # fmt: skip
    assert not (store_dir / old.file_name).exists()
    assert cli.ok("recordings", "verify").out.startswith("chain of 2 recordings verified")
    assert cli.ok("recordings", "verify", "--json").json() == {
        "ok": True, "problems": [], "entries": 3, "recordings": 2, "purged": 1,
    }  # fmt: skip

    log = cli.ok("audit", "list", "--json").json()
    assert [(e["action"], e["actor"], e["target"]) for e in log] == [
        ("purge", "clerk", f"recording {old.id}"),
        ("export", "clerk", f"recording {old.id}"),
    ]
    assert log[1]["reason"] == "court order 7"
    exports = cli.ok("audit", "list", "--action", "export", "--json").json()
    assert [e["action"] for e in exports] == ["export"]
    assert "purge" in cli.ok("audit", "list").out


def test_verify_fails_naming_the_altered_file_and_row(
    cli: Cli, two: tuple[Recording, Recording], store_dir: Path
) -> None:
    old, new = two
    alter_byte(store_dir / old.file_name)

    async def tamper(sessions: Sessions) -> None:
        await drop_guards(sessions, "recordings")
        await execute(sessions, f"UPDATE recordings SET duration_ms = 5 WHERE id = {new.id}")

    on_db(cli, tamper)
    result = cli("recordings", "verify")
    assert result.status == 1
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert any(f"file {old.file_name} altered" in line for line in lines)
    assert (
        f"recording {new.id} (call {new.call_id}): row differs from its chain entry: duration_ms"
        in lines
    )
    assert result.err == (
        "callcontrol: error: the recording store failed verification: 2 problem(s)\n"
    )
    data = cli("recordings", "verify", "--json")
    assert data.status == 1
    assert not json.loads(data.out)["ok"]
    # An altered file is not exported either (exit 1: the store is damaged).
    refused(
        cli("recordings", "export", str(old.id), "--to", str(store_dir.parent / "x.ogg")),
        "altered", "not exported", status=1,
    )  # fmt: skip
    assert not (store_dir.parent / "x.ogg").exists()


def test_missing(cli: Cli, tmp_path: Path) -> None:
    async def work(sessions: Sessions) -> int:
        call_id = await add_call(sessions)
        assert await store.ingest(sessions, tmp_path, call_id, tmp_path / "gone.wav", 24000) is None
        return call_id

    call_id = on_db(cli, work)
    [row] = cli.ok("recordings", "missing", "--json").json()
    assert row["call_id"] == call_id and "does not exist" in row["why"]
    assert str(call_id) in cli.ok("recordings", "missing").out
    assert cli.ok("recordings", "missing", "--all", "--json").json() == [row]


def test_empty_store(cli: Cli) -> None:
    assert cli.ok("recordings", "list").out == "no recordings\n"
    assert cli.ok("recordings", "missing").out == "no missing recordings\n"
    assert cli.ok("audit", "list").out == "no audit entries\n"
    assert cli.ok("recordings", "verify").out.startswith("chain of 0 recordings verified")
    assert cli.ok("recordings", "purge").out.startswith("purged 0 recording(s)")


def test_bad_input_is_refused_and_writes_nothing(
    cli: Cli, two: tuple[Recording, Recording], tmp_path: Path
) -> None:
    old, _ = two
    before = written(cli)
    taken = tmp_path / "taken.ogg"
    taken.write_bytes(b"mine")
    for argv, words in (
        (("recordings", "export", "99999", "--to", str(tmp_path / "a.ogg")), ("no recording",)),
        (("recordings", "export", str(old.id), "--to", str(taken)), ("already exists",)),
        (("recordings", "export", str(old.id), "--to", str(tmp_path / "no" / "a.ogg")),
         ("does not exist",)),
        (("recordings", "export", "x", "--to", str(tmp_path / "a.ogg")), ("not a whole number",)),
        (("recordings", "export", str(old.id)), ("--to",)),
        (("recordings", "list", "--prisoner", "NOBODY"), ("no prisoner",)),
        (("recordings", "list", "--limit", "0"), ("--limit",)),
        (("recordings", "purge", "--older-than-days", "0"), ("--older-than-days",)),
        (("recordings", "purge", "--older-than-days", "-5"), ("--older-than-days",)),
        (("audit", "list", "--limit", "many"), ("--limit",)),
        (("recordings", "frobnicate"), ("invalid choice",)),
    ):  # fmt: skip
        refused(cli(*argv), *words)
    assert written(cli) == before
    assert taken.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.glob("*.ogg")) == ["taken.ogg"]


def test_help(cli: Cli) -> None:
    for argv in (("recordings",), ("recordings", "purge"), ("recordings", "export"), ("audit",)):
        result = cli(*argv, "--help")
        assert result.status == 0 and "usage: callcontrol" in result.out
    assert "hash chain" in " ".join(cli("recordings", "--help").out.split())
