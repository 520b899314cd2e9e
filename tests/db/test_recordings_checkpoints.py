"""The recording chain anchored outside the database, on SQLite and PostgreSQL: someone who owns
the database (triggers dropped) rewrites the chain consistently, or cuts off its tail, and
plain `recordings verify` cannot tell; `verify --public-key` with the signed checkpoints can."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from callcontrol.adapters.db.tables import ChainEntry, Recording
from callcontrol.domain.chain import GENESIS, canonical, entry_hash, parse
from tests.db.conftest import Cli
from tests.db.test_recordings import drop_guards, execute
from tests.db.test_recordings_cli import Sessions, on_db, recorded, refused


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "recordings"  # the default store_dir under CALLCONTROL_BASE_DIR


def anchored(cli: Cli, tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint of the chain as it is; the public key and a copy of the checkpoints kept
    off the host (here: outside var/)."""
    cli.ok("recordings", "checkpoint")
    public = tmp_path / "chain.pub"
    cli.ok("recordings", "export-key", "--to", str(public))
    off_host = tmp_path / "off-host-checkpoints"
    shutil.copy(tmp_path / "var" / "chain-checkpoints", off_host)
    return public, off_host


async def unguard(sessions: Sessions) -> None:
    for table in ("recordings", "recording_chain", "recording_chain_head"):
        await drop_guards(sessions, table)


def rewrite_chain(cli: Cli, recording_id: int, number: str) -> None:
    """Change a recording's number, then rewrite every entry from it on so that the links,
    the rows and the head all agree again: what the database's owner can do."""

    async def work(sessions: Sessions) -> None:
        await unguard(sessions)
        async with sessions.begin() as s:
            entries = (await s.scalars(select(ChainEntry).order_by(ChainEntry.id))).all()
            prev, changed = GENESIS, False
            for e in entries:
                event = parse(e.body) or {}
                if e.kind == "recording" and e.recording_id == recording_id:
                    event["number"], changed = number, True
                body = canonical(event)
                link = entry_hash(prev, body)
                if changed:
                    await s.execute(
                        text("UPDATE recording_chain SET body = :b, prev_hash = :p, "
                             "entry_hash = :h WHERE id = :id"),
                        {"b": body, "p": prev, "h": link, "id": e.id},
                    )  # fmt: skip
                    if e.kind == "recording":
                        await s.execute(
                            text("UPDATE recordings SET number = :n, prev_entry_hash = :p, "
                                 "entry_hash = :h WHERE id = :id"),
                            {"n": event["number"], "p": prev, "h": link, "id": e.recording_id},
                        )  # fmt: skip
                prev = link
            await s.execute(
                text("UPDATE recording_chain_head SET entry_hash = :h WHERE id = 1"), {"h": prev}
            )

    on_db(cli, work)


def cut_tail(cli: Cli, rec: Recording) -> None:
    """Remove the last recording and its chain entry, and the head with them."""

    async def work(sessions: Sessions) -> None:
        await unguard(sessions)
        await execute(
            sessions,
            f"DELETE FROM recording_chain WHERE recording_id = {rec.id}",
            f"DELETE FROM recordings WHERE id = {rec.id}",
            f"UPDATE recording_chain_head SET entries = entries - 1, "
            f"entry_hash = '{rec.prev_entry_hash}' WHERE id = 1",
        )

    on_db(cli, work)


def test_a_chain_rewritten_by_the_database_owner_fails_against_the_checkpoints(
    cli: Cli, store_dir: Path, tmp_path: Path
) -> None:
    first = recorded(cli, store_dir, tmp_path, 3, 700.0)
    recorded(cli, store_dir, tmp_path, 2, 800.0)
    public, off_host = anchored(cli, tmp_path)
    ok = cli.ok("recordings", "verify", "--public-key", str(public), "--checkpoints", str(off_host))
    assert "it extends all 2 signed checkpoint(s)" in ok.out  # the file's and the database's

    rewrite_chain(cli, first.id, "+447700900999")
    # The links, rows and head agree again: the chain alone cannot show it.
    assert cli.ok("recordings", "verify").out.startswith("chain of 2 recordings verified")
    # The owner also wipes the database's checkpoints and the local file.
    on_db(cli, lambda s: execute(s, "DELETE FROM recording_chain_checkpoints"))
    (tmp_path / "var" / "chain-checkpoints").write_text("")
    result = cli("recordings", "verify", "--public-key", str(public), "--checkpoints",
                 str(off_host), "--json")  # fmt: skip
    assert result.status == 1
    data = json.loads(result.out)
    assert data["ok"] is False and data["checkpoints"] == 1
    assert data["problems"] == [
        f"checkpoint ({off_host.name} line 1, at {data['problems'][0].split('at ')[1][:32]}): "
        "entry 2 of the chain is not the one signed: the chain was rewritten"
    ]


def test_a_tail_removed_fails_against_the_checkpoints(
    cli: Cli, store_dir: Path, tmp_path: Path
) -> None:
    recorded(cli, store_dir, tmp_path, 3, 700.0)
    last = recorded(cli, store_dir, tmp_path, 2, 800.0)
    public, off_host = anchored(cli, tmp_path)
    cut_tail(cli, last)
    (store_dir / last.file_name).unlink()
    assert cli.ok("recordings", "verify").out.startswith("chain of 1 recordings verified")
    result = cli(
        "recordings", "verify", "--public-key", str(public), "--checkpoints", str(off_host)
    )
    assert result.status == 1
    assert "the chain had 2 entries, it has 1 now: entries were removed from its end" in result.out


def test_a_forged_checkpoint_and_no_checkpoint_fail(
    cli: Cli, store_dir: Path, tmp_path: Path
) -> None:
    recorded(cli, store_dir, tmp_path, 3, 700.0)
    public = tmp_path / "chain.pub"
    cli.ok("recordings", "export-key", "--to", str(public))
    empty = tmp_path / "empty"
    empty.write_text("")
    result = cli("recordings", "verify", "--public-key", str(public), "--checkpoints", str(empty))
    assert result.status == 1 and "no checkpoint to check the chain against" in result.out

    line = cli.ok("recordings", "checkpoint").out.strip()
    forged = tmp_path / "forged"
    entries = line.split(" entries=")[1].split(" ")[0]
    forged.write_text(line.replace(f"entries={entries}", "entries=7") + "\n")
    result = cli("recordings", "verify", "--public-key", str(public), "--checkpoints", str(forged))
    assert result.status == 1 and "signature does not verify" in result.out


def test_the_key_stays_out_of_the_database_and_purge_signs(
    cli: Cli, store_dir: Path, tmp_path: Path
) -> None:
    recorded(cli, store_dir, tmp_path, 100, 700.0)
    pem = cli.ok("recordings", "export-key").out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    key = tmp_path / "var" / "chain-signing-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    private = key.read_text()
    assert "PRIVATE KEY" in private
    # Not in any table: the database holds the public half's id and signatures only.
    dumped = json.dumps(
        [cli.query(text(f"SELECT * FROM {t}")) for t in (
            "recording_chain_checkpoints", "recording_chain", "recordings", "audit_log")],
        default=str,
    )  # fmt: skip
    body = "".join(private.splitlines()[1:-1])
    assert body[:40] not in dumped

    purged = cli.ok("recordings", "purge", "--by", "clerk", "--json").json()
    assert len(purged["receipts"]) == 1
    lines = (tmp_path / "var" / "chain-checkpoints").read_text().splitlines()
    assert lines == [purged["checkpoint"]] and " entries=2 " in lines[0]  # the receipt included
    public = tmp_path / "pub"
    public.write_text(pem)
    assert cli.ok("recordings", "verify", "--public-key", str(public)).out.endswith(
        "it extends all 2 signed checkpoint(s)\n"
    )
    refused(cli("recordings", "export-key", "--to", str(public)), "already exists")

    key.chmod(0o644)  # a key others can read anchors nothing: refused
    refused(cli("recordings", "checkpoint"), "chmod 600", status=1)


def test_the_daemon_signs_when_the_head_moves_and_at_least_hourly(
    cli: Cli, store_dir: Path, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from callcontrol.adapters.anchor import SigningKey
    from callcontrol.services.chain_checkpoints import Checkpointer

    file = tmp_path / "cps"
    key = SigningKey(Ed25519PrivateKey.generate())
    t0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)

    async def ticks(sessions: Sessions, minutes: list[int]) -> list[int | None]:
        writer = Checkpointer(sessions, key, file, 3600)
        return [
            None if (cp := await writer.tick(t0 + timedelta(minutes=m))) is None else cp.entries
            for m in minutes
        ]

    assert on_db(cli, lambda s: ticks(s, [0, 1, 59, 60, 61])) == [0, None, None, 0, None]
    recorded(cli, store_dir, tmp_path, 3, 700.0)
    # A new writer (a restarted daemon) starts from the last checkpoint in the database.
    assert on_db(cli, lambda s: ticks(s, [62, 63])) == [1, None]
    assert len(file.read_text().splitlines()) == 3
