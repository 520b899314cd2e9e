"""What was read of the call journal, kept with the position in one transaction (SQLite and
PostgreSQL): entries merged across pieces, reread lines harmless, the position round-trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.journal_store import SqlJournalStore
from callcontrol.domain.call_end import CallEnd, JournalEntry, JournalPosition

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
