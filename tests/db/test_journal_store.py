"""What was read of the call journal, kept with the position in one transaction (SQLite and
PostgreSQL): entries merged across pieces, reread lines harmless, the position round-trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.journal_store import SqlJournalStore
from callcontrol.adapters.journal_file import JournalFile
from callcontrol.domain.call_end import CallEnd, JournalEntry, JournalPosition
from callcontrol.services.journal import JournalFollower
from tests.db.conftest import Cli
from tests.db.test_recordings_cli import on_db

ACCEPTED = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
ENDED = datetime(2027, 3, 1, 12, 5, tzinfo=UTC)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlJournalStore]:
    engine = make_engine(db_url)
    yield SqlJournalStore(session_factory(engine))
    await engine.dispose()


async def test_entries_merge_across_pieces_and_the_position_is_kept(
    store: SqlJournalStore,
) -> None:
    assert await store.position() is None
    await store.save({"u1": JournalEntry(accepted_at=ACCEPTED)}, JournalPosition(8, 9, 40))
    assert await store.position() == JournalPosition(8, 9, 40)
    end = CallEnd("u1", None, ENDED, "ANSWER", "16", "PJSIP/cell-1")
    await store.save({"u1": JournalEntry(end=end)}, JournalPosition(8, 9, 90))
    await store.save(
        {"u1": JournalEntry(accepted_at=ACCEPTED)}, JournalPosition(8, 9, 90)
    )  # reread
    expected = JournalEntry(
        accepted_at=ACCEPTED, end=CallEnd("u1", ACCEPTED, ENDED, "ANSWER", "16", "PJSIP/cell-1")
    )
    assert await store.entries(["u1", "nobody"]) == {"u1": expected}
    assert await store.position() == JournalPosition(8, 9, 90)


async def test_many_calls_at_once(store: SqlJournalStore) -> None:
    calls = {f"u{n}": JournalEntry(accepted_at=ACCEPTED) for n in range(1200)}
    await store.save(calls, JournalPosition(1, 2, 3))
    found = await store.entries([*calls, *calls])
    assert found == calls


def test_journal_rotate_and_status_commands(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.log"
    monkeypatch.setenv("CALLCONTROL_ASTERISK_JOURNAL_FILE", str(journal))
    assert "nothing to rotate" in cli.ok("journal", "rotate").out
    journal.write_text("accepted|u1|1790000000.000\n")

    async def read(sessions: Any) -> None:
        follower = JournalFollower(JournalFile(journal), SqlJournalStore(sessions))
        await follower.catch_up()

    on_db(cli, read)
    [row] = cli.ok("journal", "status", "--json").json()
    assert row == {"file": str(journal), "bytes": 27, "state": "reading: 27 of 27 bytes read"}
    moved = Path(cli.ok("journal", "rotate", "--json").json()["rotated"])
    assert moved.read_text() == "accepted|u1|1790000000.000\n" and journal.read_text() == ""
    rows = cli.ok("journal", "status", "--json").json()
    assert [r["file"] for r in rows] == [str(moved), str(journal)]
    assert rows[0]["state"].startswith("reading: 27") and rows[1]["state"] == "not read yet"
