"""Following the call journal (services/journal.py) with its real files and a fake store: a
restart resumes at the kept position, still knows what it read before, and settles from lines
written while it was down."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from callcontrol.adapters.journal_file import JournalFile
from callcontrol.domain.call_end import JournalEntry, JournalPosition, merge
from callcontrol.services.journal import JournalFollower


class FakeStore:
    def __init__(self) -> None:
        self.calls: dict[str, JournalEntry] = {}
        self.pos: JournalPosition | None = None
        self.saves = 0

    async def position(self) -> JournalPosition | None:
        return self.pos

    async def save(
        self, calls: Mapping[str, JournalEntry], position: JournalPosition | None
    ) -> None:
        self.saves += 1
        for uid, entry in calls.items():
            self.calls[uid] = merge(self.calls.get(uid), entry)
        self.pos = position

    async def entries(self, uniqueids: Iterable[str]) -> dict[str, JournalEntry]:
        return {u: self.calls[u] for u in uniqueids if u in self.calls}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_a_restart_resumes_where_it_stopped_and_remembers(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    path.write_text("accepted|u1|1790000000.000\naccepted|u2|1790000001.000\n")
    store = FakeStore()
    first = JournalFollower(JournalFile(path), store)
    assert await first.catch_up() == 2
    assert await first.catch_up() == 0 and store.saves == 1  # nothing new: nothing written

    # The daemon is down; Asterisk goes on: u1 ends (its end line without the acceptance).
    with path.open("a") as f:
        f.write("ended|u1||1790000030.000|ANSWER|16|PJSIP/cell-1\nended|u3||17")  # mid-write
    again = JournalFollower(JournalFile(path), store)
    assert await again.catch_up() == 1  # only the new whole line: nothing reread
    [u1] = (await again.entries(["u1"])).values()
    assert u1.end is not None and u1.end.accepted_at == at(1790000000)  # known from before
    assert u1.end.ended_at == at(1790000030)
    assert (await again.entry("u2")) == JournalEntry(accepted_at=at(1790000001))
    assert await again.entry("u3") is None  # its line is not whole yet
    with path.open("a") as f:
        f.write("90000040.000|CANCEL||\n")
    u3 = await again.entry("u3")
    assert u3 is not None and u3.end is not None and u3.end.dial_status == "CANCEL"


async def test_rotation_when_due(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    path.write_text("accepted|u1|1790000000.000\n")
    follower = JournalFollower(JournalFile(path), FakeStore())
    assert await follower.rotate_if_due(10**6, 86400, at(1790000000 + 3600)) is None
    rotated = await follower.rotate_if_due(10**6, 3600, at(1790000000 + 3600))
    assert rotated is not None and rotated.read_text() == "accepted|u1|1790000000.000\n"
    assert path.read_text() == ""
    assert (await follower.entry("u1")) == JournalEntry(accepted_at=at(1790000000))


async def test_an_unreadable_journal_leaves_what_was_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    path.write_text("accepted|u1|1790000000.000\n")
    store = FakeStore()
    await JournalFollower(JournalFile(path), store).catch_up()
    path.unlink()
    path.mkdir()  # reading it fails (IsADirectoryError)
    follower = JournalFollower(JournalFile(path), store)
    assert (await follower.entry("u1")) == JournalEntry(accepted_at=at(1790000000))
