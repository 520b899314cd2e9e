"""Backup and restore of a whole site, on SQLite and on the tests' PostgreSQL (pg_dump and
pg_restore of the server's own version): a site with prisoners, decided and settled calls, a
ledger, recordings, a signed chain and keys is backed up and restored into a fresh database
and fresh folders; there `recordings verify` passes, the balances are the same, and the real
decision service decides the same calls the same way as on the original."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.adapters.db import dump, ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.dump import backend
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.globals_store import SqlGlobals
from callcontrol.adapters.web.staff_file import read_accounts
from callcontrol.config import load_settings
from callcontrol.services import recordings as store
from callcontrol.wiring import build_authoriser
from tests.conftest import create_pg_database, drop_pg_database
from tests.db.conftest import Cli
from tests.db.test_recordings import make_wav
from tests.services.test_authorise import FakeChannel

# (cell, PIN keyed, number dialled): approved, wrong PIN, pending contact, privileged legal
# contact, not on the list, and the approved one again (after the first was charged).
ATTEMPTS = (
    ("A1-01", "1357", "02079460000"),
    ("A1-01", "9999", "02079460000"),
    ("A1-02", "2468", "07911123456"),
    ("A1-01", "1357", "01614960000"),
    ("A1-01", "1357", "07000000000"),
    ("A1-01", "1357", "02079460000"),
)
SHOWN = (cv.DECISION, cv.REASON, cv.NUMBER, cv.LIMIT_MS, cv.RECORD)


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the same kind as ``db_url`` (no schema: the restore makes it)."""
    if backend(db_url) == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'callcontrol.sqlite3'}"
        return
    pg_url = request.getfixturevalue("pg_url")
    url = create_pg_database(pg_url, migrate=False)
    try:
        yield url
    finally:
        drop_pg_database(pg_url, url)


async def _decide(tag: str, ingest_first: bool = False) -> list[dict[str, Any]]:
    """Each attempt through the real handler and decision service on the configured site; an
    allowed call is answered, talks 90 s, ends and is settled (3p unless free), and with
    ``ingest_first`` the first one's recording is stored."""
    settings = load_settings()
    engine = make_engine(settings.database.url)
    sessions = session_factory(engine)
    handler = CellCallHandler(
        build_authoriser(settings, SqlCallStore(sessions), SqlGlobals(sessions)), PinPrompting(1)
    )
    results = []
    try:
        for i, (cell, pin, dialled) in enumerate(ATTEMPTS):
            channel = FakeChannel(cell, dialled, [pin], uniqueid=f"{tag}.{i}")
            await handler(channel)
            results.append({k: channel.variables.get(k) for k in SHOWN})
            if channel.variables.get(cv.DECISION) != cv.ALLOW:
                continue
            now = datetime.now(UTC)
            async with sessions.begin() as s:
                call = await s.scalar(select(m.Call).where(m.Call.uniqueid == f"{tag}.{i}"))
                assert call is not None
                call.ended_at = now
                await ledger.settle(
                    s, call.id, 0 if call.privileged else 3, talk_seconds=90, accepted=True,
                    answered_at=now - timedelta(seconds=90), dial_status="ANSWER",
                )  # fmt: skip
            if ingest_first and not call.privileged:
                wav = make_wav(settings.path("spool") / f"{call.id}.wav", seconds=2)
                store_dir = settings.path(settings.recording.store_dir)
                assert await store.ingest(sessions, store_dir, call.id, wav, 24000) is not None
                ingest_first = False
    finally:
        await engine.dispose()
    return results


def decide(tag: str, ingest_first: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(_decide(tag, ingest_first))


def balances(cli: Cli) -> list[Any]:
    return [
        cli.ok("account", "show", p, "--json").json()["balance_pence"]
        for p in ("A1234BC", "B5678CD")
    ]


@pytest.fixture
def site(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Two cells and prisoners (PINs hashed with a secret in a file), contacts approved,
    pending and legal, credit, an API token, decided and settled calls, a recording, and a
    signed checkpoint of the chain."""
    monkeypatch.delenv("CALLCONTROL_SECURITY_PIN_SECRET")
    for cell in ("A1-01", "A1-02"):
        cli.ok("cell", "add", cell, "--sip-password-stdin", stdin="a-long-sip-password-1\n")
    for number, cell, pin in (("A1234BC", "A1-01", "1357"), ("B5678CD", "A1-02", "2468")):
        cli.ok("prisoner", "add", number, "--name", "X", "--cell", cell, "--pin-stdin",
               stdin=pin + "\n")  # fmt: skip
    cli.ok("contact", "add", "A1234BC", "020 7946 0000", "--kind", "social")
    cli.ok("contact", "approve", "A1234BC", "02079460000")
    cli.ok("contact", "add", "A1234BC", "0161 496 0000", "--kind", "legal")
    cli.ok("contact", "approve", "A1234BC", "01614960000")
    cli.ok("contact", "add", "B5678CD", "07911 123456", "--kind", "social")
    cli.ok("account", "topup", "A1234BC", "500", "--reference", "R1")
    cli.ok("account", "topup", "B5678CD", "200", "--reference", "R2")
    cli.ok("token", "add", "--person", "Jane Admin", "--role", "admin")
    cli.ok("staff", "add", "jadmin", "--role", "admin", "--name", "Jane Admin",
           "--password-stdin", stdin="a console password\n")  # fmt: skip
    decided = decide("site", ingest_first=True)
    assert [d[cv.REASON] for d in decided] == [
        "approved_contact", "wrong_pin", "contact_pending", "approved_contact", "not_approved",
        "approved_contact",
    ]  # fmt: skip
    cli.ok("recordings", "checkpoint")
    return cli


def test_backup_and_restore_rebuild_the_same_site(
    site: Cli, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = site.ok("backup", "--to", str(tmp_path / "backup"), "--json").json()
    folder = tmp_path / "backup"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.rglob("*") if p.is_file())
    assert made["recordings"]["count"] == 1 and made["problems"] == []
    assert {k for k, v in made["keys"].items() if v} == {
        "pin-secret", "chain-signing-key", "chain-checkpoints", "api-tokens", "staff"
    }  # fmt: skip
    original_balances = balances(site)
    assert original_balances == [500 - 6, 200]

    new_site = tmp_path / "new-site"
    monkeypatch.setenv("CALLCONTROL_BASE_DIR", str(new_site))
    monkeypatch.setenv("CALLCONTROL_DATABASE_URL", fresh_url)
    done = site.ok("restore", "--from", str(folder), "--json").json()
    assert done["recordings"] == {"listed": 1, "in_store": 1, "mode": "copy"}
    assert not done["upgrade_needed"]
    assert (new_site / "var" / "pin-secret").stat().st_mode & 0o777 == 0o600
    assert [a.username for a in read_accounts(new_site / "var" / "staff")] == ["jadmin"]
    verified = site.ok("recordings", "verify", "--json").json()
    assert verified["ok"] and verified["recordings"] == 1
    site.ok("recordings", "export-key", "--to", str(tmp_path / "public.pem"))
    site.ok("recordings", "verify", "--public-key", str(tmp_path / "public.pem"))
    assert balances(site) == original_balances
    restored = decide("again")
    assert balances(site) == [500 - 6 - 6, 200]

    monkeypatch.setenv("CALLCONTROL_BASE_DIR", str(tmp_path))
    monkeypatch.setenv("CALLCONTROL_DATABASE_URL", site.url)
    assert decide("again") == restored
    assert restored[1][cv.REASON] == "wrong_pin" and restored[0][cv.REASON] == "approved_contact"
    assert balances(site) == [500 - 6 - 6, 200]


def test_restore_refuses_a_damaged_backup_a_full_database_and_other_keys(
    site: Cli, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "backup"
    site.ok("backup", "--to", str(folder))
    again = site("backup", "--to", str(folder))
    assert again.status == 1 and "not an empty folder" in again.err

    refused = site("restore", "--from", str(folder))  # into the site itself: not empty
    assert refused.status == 1 and "not empty" in refused.err

    new_site = tmp_path / "new-site"
    monkeypatch.setenv("CALLCONTROL_BASE_DIR", str(new_site))
    monkeypatch.setenv("CALLCONTROL_DATABASE_URL", fresh_url)
    (new_site / "var").mkdir(parents=True)
    (new_site / "var" / "pin-secret").write_text("another-pin-secret-0123456789\n")
    refused = site("restore", "--from", str(folder))
    assert refused.status == 1 and "pin-secret exists and differs" in refused.err
    assert site("db", "upgrade").status == 0  # nothing was restored: the database was empty
    (new_site / "var" / "pin-secret").unlink()

    key = folder / "keys" / "api-tokens"
    key.write_text(key.read_text() + "\n")
    refused = site("restore", "--from", str(folder))
    assert refused.status == 1 and "keys/api-tokens: changed" in refused.err
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["keys/api-tokens"]["sha256"]


def test_reference_mode_lists_the_recordings_without_copying_them(
    site: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "backup"
    made = site.ok("backup", "--to", str(folder), "--recordings", "reference", "--json").json()
    assert made["recordings"] == made["recordings"] | {"mode": "reference", "count": 1}
    assert not (folder / "recordings").exists()
    [listed] = json.loads((folder / "recordings.json").read_text())
    assert (tmp_path / "var" / "recordings" / listed["file_name"]).exists()


def test_force_puts_the_backup_back_over_a_site_that_moved_on(site: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    site.ok("backup", "--to", str(folder))
    before = balances(site)
    site.ok("account", "topup", "B5678CD", "300", "--reference", "R3")
    site.ok("prisoner", "add", "C1111CC", "--name", "Y", "--cell", "A1-02", "--pin-stdin",
            stdin="3579\n")  # fmt: skip
    assert balances(site) != before
    site.ok("restore", "--from", str(folder), "--force")
    assert balances(site) == before
    listed = site.ok("prisoner", "list", "--json").json()
    assert sorted(p["prison_number"] for p in listed) == ["A1234BC", "B5678CD"]
    assert site.ok("recordings", "verify", "--json").json()["ok"]


def test_a_pg_dump_of_another_major_version_is_refused(pg_database: str, tmp_path: Path) -> None:
    """pg_dump must be the server's own major version: an older one refuses a newer server,
    a newer one writes what older tools cannot restore."""
    major = asyncio.run(dump.server_major(pg_database))
    fake = tmp_path / "bin" / "pg_dump"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {major - 1}.3'\n")
    fake.chmod(0o755)
    with pytest.raises(dump.DumpError, match=f"no pg_dump for PostgreSQL {major}"):
        asyncio.run(dump.dump(pg_database, tmp_path / "copy", fake.parent))
    assert asyncio.run(dump.pg_tool("pg_dump", major)).parent.parent.name == str(major)
