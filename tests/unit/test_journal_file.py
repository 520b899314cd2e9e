"""The call journal read in pieces (adapters/journal_file.py): offsets, partial lines,
truncation, rotation while a writer is still appending, several rotations, a lost file."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcontrol.adapters.journal_file import JournalFile
from callcontrol.domain.call_end import JournalPosition, complete_lines, line_time

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def accepted(n: int) -> str:
    return f"accepted|u{n}|{1_790_000_000 + n}.000\n"


def append(path: Path, text: str) -> None:
    """What Asterisk's FILE(...,al) does for each line: open by name, append, close."""
    with open(path, "a") as f:
        f.write(text)


def read_all(
    journal: JournalFile, pos: JournalPosition | None
) -> tuple[list[str], JournalPosition]:
    lines: list[str] = []
    for batch in journal.lines_from(pos):
        lines += batch.lines
        pos = batch.position
    assert pos is not None
    return lines, pos


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "journal.log"
    p.touch()
    return p


def test_complete_lines_leave_a_partial_line() -> None:
    assert complete_lines(b"a\nb\nc") == (["a", "b"], 4)
    assert complete_lines(b"abc") == ([], 0)
    assert complete_lines(b"") == ([], 0)
    assert line_time("ended|u1||1790000000.500|ANSWER|16|") is not None
    assert line_time("garbage") is None


def test_reads_only_what_was_appended_since_the_position(path: Path) -> None:
    journal = JournalFile(path)
    append(path, accepted(1) + accepted(2))
    lines, pos = read_all(journal, None)
    assert lines == [accepted(1).strip(), accepted(2).strip()]
    assert pos.offset == path.stat().st_size and pos.inode == path.stat().st_ino
    assert read_all(journal, pos) == ([], pos)
    append(path, accepted(3))
    lines, pos = read_all(journal, pos)
    assert lines == [accepted(3).strip()]


def test_reads_in_bounded_pieces(path: Path) -> None:
    journal = JournalFile(path, max_bytes=64)
    append(path, "".join(accepted(n) for n in range(50)))
    batches = list(journal.lines_from(None))
    assert len(batches) > 10
    assert [line for b in batches for line in b.lines] == [accepted(n).strip() for n in range(50)]


def test_a_partial_last_line_is_not_consumed_until_complete(path: Path) -> None:
    journal = JournalFile(path)
    line = accepted(1)
    append(path, accepted(0) + line[:10])  # Asterisk mid-write
    lines, pos = read_all(journal, None)
    assert lines == [accepted(0).strip()]
    assert pos.offset == len(accepted(0))
    append(path, line[10:])
    lines, pos = read_all(journal, pos)
    assert lines == [line.strip()]


def test_a_journal_truncated_in_place_is_read_again_from_its_start(path: Path) -> None:
    journal = JournalFile(path)
    append(path, accepted(1) + accepted(2))
    _, pos = read_all(journal, None)
    path.write_text(accepted(3))
    batch = journal.read(pos)
    assert batch.lines == [accepted(3).strip()]
    assert any("truncated" in note for note in batch.notes)


def test_rotation_loses_no_line_written_by_a_late_writer(path: Path) -> None:
    clock = Clock()
    journal = JournalFile(path, grace_s=10, clock=clock)
    append(path, accepted(1))
    seen, pos = read_all(journal, None)
    late = open(path, "a")  # a writer that opened the journal just before the rotation
    clock.now = path.stat().st_ctime
    rotated = journal.rotate(T0)
    assert rotated is not None and rotated.name == "journal.log.20270301T120000.000000Z"
    assert path.read_text() == "" and rotated.read_text() == accepted(1)
    append(path, accepted(2))  # the next writer opens the new journal
    lines, pos = read_all(journal, pos)  # within the grace: stays on the rotated file ...
    assert lines == [accepted(2).strip()]  # ... but reads the new one's lines all the same
    assert pos.inode == rotated.stat().st_ino
    late.write(accepted(3))  # the late writer's line lands in the rotated file
    late.close()
    lines, pos = read_all(journal, pos)
    seen += lines
    assert accepted(3).strip() in lines
    clock.now = rotated.stat().st_ctime + 10  # quiet for the grace: on to the new journal
    lines, pos = read_all(journal, pos)
    seen += lines
    assert pos.inode == path.stat().st_ino and pos.offset == path.stat().st_size
    assert sorted(set(seen)) == sorted(accepted(n).strip() for n in (1, 2, 3))


def test_the_rotated_journal_keeps_its_mode_and_an_empty_one_is_not_rotated(path: Path) -> None:
    journal = JournalFile(path)
    assert journal.rotate(T0) is None
    path.chmod(0o640)
    append(path, accepted(1))
    rotated = journal.rotate(T0)
    assert rotated is not None
    assert oct(path.stat().st_mode & 0o777) == oct(0o640) and path.stat().st_size == 0
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == [
        "journal.log", rotated.name,
    ]  # fmt: skip


def test_several_rotations_while_the_daemon_was_down_are_read_in_order(path: Path) -> None:
    clock = Clock()
    clock.now = 1e12  # long after every rotation: no grace to wait for
    journal = JournalFile(path, clock=clock)
    append(path, accepted(1))
    _, pos = read_all(journal, None)
    append(path, accepted(2))
    journal.rotate(T0)
    append(path, accepted(3) + accepted(4)[:5])  # a line never finished before its rotation
    journal.rotate(T0 + timedelta(seconds=1))
    append(path, accepted(5))
    lines, pos = read_all(journal, pos)
    assert lines == [accepted(n).strip() for n in (2, 3, 5)]
    assert pos.inode == path.stat().st_ino


def test_a_lost_file_is_said_and_reading_goes_on(path: Path) -> None:
    clock = Clock()
    clock.now = 1e12
    journal = JournalFile(path, clock=clock)
    append(path, accepted(1) + accepted(2))
    _, pos = read_all(journal, None)
    pos = JournalPosition(pos.device, pos.inode, len(accepted(1)))
    rotated = journal.rotate(T0)
    assert rotated is not None
    os.unlink(rotated)
    append(path, accepted(3))
    batch = journal.read(pos)
    assert batch.lines == [accepted(3).strip()]
    assert any("is gone" in note for note in batch.notes)


def test_rotation_is_due_by_size_or_by_the_first_line_s_age(path: Path) -> None:
    journal = JournalFile(path)
    assert not journal.rotation_due(100, 3600, T0)
    append(path, f"accepted|u1|{T0.timestamp():.3f}\n")
    assert not journal.rotation_due(1000, 3600, T0 + timedelta(minutes=59))
    assert journal.rotation_due(1000, 3600, T0 + timedelta(hours=1))
    assert journal.rotation_due(10, 3600, T0)
