"""Secrets at rest: handsets' SIP passwords become digest hashes (migration 0007), and what
callcontrol creates under var/ is private (0600 files, 0700 folders) whatever the umask."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from callcontrol.adapters import storage
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import downgrade, make_engine, upgrade
from callcontrol.cli import main
from tests.db.conftest import clean_environment
from tests.db.test_recordings import make_wav


def ha1(user: str, password: str, realm: str = "callcontrol") -> str:
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


async def test_0007_turns_clear_passwords_into_digest_hashes(db_url: str) -> None:
    await downgrade(db_url, "0006")
    engine = make_engine(db_url)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO cells (name, wing, sip_username, sip_password, enabled, "
                    "disabled_reason, created_at, updated_at) VALUES "
                    "('A1-01', 'A', 'A1-01', 'Clear-pass-0001', true, '', :t, :t), "
                    "('A1-02', 'A', 'A1-02', 'Clear-pass-0002', false, 'broken', :t, :t)"
                ),
                {"t": now},
            )
        await upgrade(db_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(m.Cell.name, m.Cell.sip_realm, m.Cell.sip_md5_cred).order_by(m.Cell.name)
                )
            ).all()
            columns = (await conn.execute(text("SELECT * FROM cells"))).keys()
        assert [tuple(r) for r in rows] == [
            ("A1-01", "callcontrol", ha1("A1-01", "Clear-pass-0001")),
            ("A1-02", "callcontrol", ha1("A1-02", "Clear-pass-0002")),
        ]
        assert "sip_password" not in columns  # the clear passwords are gone
        # Down again: the clear passwords cannot come back; new unknown ones stand in.
        await downgrade(db_url, "0006")
        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT sip_password FROM cells"))).all()
        assert len(after) == 2 and {"Clear-pass-0001", "Clear-pass-0002"}.isdisjoint(
            r[0] for r in after
        )
        await upgrade(db_url)
    finally:
        await engine.dispose()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: whatever is private is private by callcontrol's doing."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_var_and_everything_in_it_are_private_whatever_the_umask(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_umask: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.setenv("CALLCONTROL_BASE_DIR", str(tmp_path))
    monkeypatch.setenv("CALLCONTROL_LAB_ENABLED", "true")  # the lab's handsets file too
    var = tmp_path / "var"
    assert main(["db", "upgrade"]) == 0  # the default: sqlite var/callcontrol.sqlite3
    assert main(["cell", "add", "A1-01"]) == 0
    assert main(["prisoner", "add", "P1", "--name", "A", "--generate-pin", "--cell", "A1-01"]) == 0
    assert main(["token", "add", "--person", "Jane Officer", "--role", "officer"]) == 0
    source = make_wav(tmp_path / "spool" / "call.wav", seconds=1.0)
    storage.store(var / "recordings", "t", source, 24000)  # a recording, as the daemon keeps it
    made = sorted(p.relative_to(var) for p in var.rglob("*"))
    for name in (
        "callcontrol.sqlite3",
        "pin-secret",
        "api-tokens",
        "lab-handsets.json",
        "recordings",
    ):
        assert Path(name) in made, made
    assert mode(var) == 0o700
    recordings = list((var / "recordings").iterdir())
    assert len(recordings) == 1
    for path in [var, *var.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o400 if path in recordings else 0o600
        assert mode(path) == expected, f"{path}: {mode(path):04o}"


def test_sqlite_wal_and_shm_are_private(tmp_path: Path, open_umask: None) -> None:
    """SQLite makes -wal and -shm with the database file's mode: so 0600 too."""
    import asyncio

    db = tmp_path / "var" / "cc.sqlite3"

    async def write() -> dict[str, int]:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("PRAGMA journal_mode=WAL"))
                await conn.execute(text("CREATE TABLE t (x INTEGER)"))
                await conn.execute(text("INSERT INTO t VALUES (1)"))
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM t"))
                return {p.name: mode(p) for p in db.parent.iterdir()}  # while they exist
        finally:
            await engine.dispose()

    seen = asyncio.run(write())
    assert set(seen) >= {"cc.sqlite3", "cc.sqlite3-wal", "cc.sqlite3-shm"}
    assert set(seen.values()) == {0o600}, {k: oct(v) for k, v in seen.items()}
    assert mode(db.parent) == 0o700


def test_files_too_open_are_tightened_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    db = var / "callcontrol.sqlite3"
    secret = var / "pin-secret"
    db.write_bytes(b"")
    secret.write_text("x" * 64)
    os.chmod(db, 0o644)
    os.chmod(secret, 0o666)
    os.chmod(var, 0o777)
    from callcontrol.config import load_settings

    settings = load_settings(env={"CALLCONTROL_BASE_DIR": str(tmp_path)})
    with caplog.at_level(logging.WARNING):
        make_engine(f"sqlite+aiosqlite:///{db}")
        settings.pin_secret()
    assert mode(db) == 0o600 and mode(secret) == 0o600
    assert f"{db} was open to other accounts (mode 0644): tightened to 0600" in caplog.text
    assert f"{secret} was open to other accounts (mode 0666): tightened to 0600" in caplog.text
    assert f"{var} is writable by other accounts (mode 0777)" in caplog.text
