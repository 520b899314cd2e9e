"""The call journal's files: read in pieces from a kept position, and rotated without a line lost.

Asterisk appends each call's acceptance and end to the journal with ``FILE(...,,,al,u)``: for
every line it opens the file by name (``fopen(name, "a")``), writes the line and closes it. So:

- A position is the file's identity (device and inode, which a rename keeps) and an offset.
  ``read`` returns the whole lines after it; a last line without its newline (Asterisk
  mid-write) is left for next time.
- ``rotate`` moves the journal aside with no moment where its name is missing: it hard-links
  the file to ``<name>.<UTC time>`` and then renames a new empty file over the name. A writer
  that opened the old file just before keeps writing into it (now the rotated file). The reader
  follows its file by inode into the rotated name, reads it to the end, and moves on to the next
  file only once the rotated one has been quiet (no write, no rename) for ``grace_s``; until
  then it also reads the next files' lines without moving its position (they are read again
  after the switch: settling from a line twice changes nothing). So no line is lost to the race.
- A file shorter than the position (truncated in place, e.g. by logrotate's copytruncate) is
  read again from its start, and said so. Use ``callcontrol journal rotate``, not copytruncate.

Everything here blocks: the daemon calls it in a thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from callcontrol.domain.call_end import JournalPosition as Position
from callcontrol.domain.call_end import complete_lines, line_time

GRACE_S = 10.0
MAX_BYTES = 1 << 20  # read at most this much at a time
_STAMP = re.compile(r"\.\d{8}T\d{6}\.\d{6}Z$")


@dataclass
class Batch:
    lines: list[str]
    position: Position | None
    more: bool = False  # read again at once: there is more to read
    notes: list[str] = field(default_factory=list)  # for the operator's log


class JournalFile:
    """The journal at ``path`` and the files rotated from it (``path.<UTC time>``)."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = MAX_BYTES,
        grace_s: float = GRACE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_bytes, self.grace_s, self.clock = max_bytes, grace_s, clock

    def rotated(self) -> list[Path]:
        """The rotated files, oldest first (their names sort by time)."""
        prefix = self.path.name + "."
        try:
            names = [n for n in os.listdir(self.path.parent) if n.startswith(prefix)]
        except FileNotFoundError:
            return []
        return [self.path.parent / n for n in sorted(names) if _STAMP.search(n)]

    def _files(self) -> list[tuple[Path, os.stat_result]]:
        """The rotated files then the journal itself, each once (during a rotation the journal
        and its rotated name are briefly the same file: it counts as the journal)."""
        found = []
        for p in [*self.rotated(), self.path]:
            with contextlib.suppress(FileNotFoundError):
                found.append((p, os.stat(p)))
        if found and found[-1][0] == self.path:
            current = _identity(found[-1][1])
            found = [f for f in found[:-1] if _identity(f[1]) != current] + [found[-1]]
        return found

    def read(self, pos: Position | None) -> Batch:
        """The whole lines after ``pos`` in the file it names (the journal itself when None),
        and the position after them; ``more`` when reading again would give more."""
        files = self._files()
        if not files:
            return Batch([], pos)
        notes: list[str] = []
        ids = [_identity(st) for _, st in files]
        if pos is None:
            index, offset = len(files) - 1, 0
        elif (pos.device, pos.inode) in ids:
            index, offset = ids.index((pos.device, pos.inode)), pos.offset
        else:
            index, offset = len(files) - 1, 0
            notes.append(
                f"the journal file read up to byte {pos.offset} is gone (removed after a "
                f"rotation?): reading {files[index][0]} from its start; lines after that byte in "
                "the lost file were not read"
            )
        path, st = files[index]
        if st.st_size < offset:
            notes.append(
                f"{path} is shorter ({st.st_size} bytes) than where reading stopped ({offset}): "
                "it was truncated in place; reading it again from its start"
            )
            offset = 0
        data = _read(path, offset, self.max_bytes)
        lines, used = complete_lines(data)
        if used == 0 and len(data) >= self.max_bytes:
            notes.append(f"{path}: {len(data)} bytes without a newline at byte {offset}: skipped")
            used = len(data)
        position = Position(st.st_dev, st.st_ino, offset + used)
        more = len(data) >= self.max_bytes
        if index == len(files) - 1 or more:
            return Batch(lines, position, more, notes)
        # A rotated file, read to its end: move on once nothing can still be writing to it.
        if self.clock() - st.st_ctime < self.grace_s:
            for later, _ in files[index + 1 :]:
                lines += complete_lines(_read(later, 0, self.max_bytes))[0]
            return Batch(lines, position, False, notes)
        if len(data) > used:
            notes.append(
                f"{path}: its last line was never finished ({len(data) - used} bytes): skipped"
            )
        following = files[index + 1][1]
        return Batch(lines, Position(following.st_dev, following.st_ino, 0), True, notes)

    def lines_from(self, pos: Position | None) -> Iterator[Batch]:
        """Every batch from ``pos`` until there is nothing more to read now."""
        while True:
            batch = self.read(pos)
            yield batch
            if not batch.more or batch.position == pos:
                return
            pos = batch.position

    def rotation_due(self, max_bytes: int, max_age_s: float, now: datetime) -> bool:
        """Whether the journal is at least ``max_bytes`` long, or its first line at least
        ``max_age_s`` old."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return False
        if size >= max_bytes:
            return True
        if size == 0:
            return False
        first = _read(self.path, 0, 4096).split(b"\n", 1)[0].decode("utf-8", errors="replace")
        at = line_time(first)
        return at is not None and (now - at).total_seconds() >= max_age_s

    def rotate(self, now: datetime) -> Path | None:
        """Move the journal aside as ``<name>.<UTC time>`` and put an empty journal (same mode
        and owner) in its place, atomically; None when it is empty or missing. Rotations take
        a lock (``<name>.lock``): the daemon and the command never rotate at the same time."""
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return None
            if st.st_size == 0:
                return None
            stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            target = self.path.with_name(f"{self.path.name}.{stamp}")
            fresh = self.path.with_name(f".{self.path.name}.new-{os.getpid()}")
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, st.st_uid, st.st_gid)
            finally:
                os.close(fd)
            try:
                os.link(self.path, target)  # the old file under its rotated name too
                os.rename(fresh, self.path)  # the name never goes missing
            except BaseException:
                fresh.unlink(missing_ok=True)
                raise
            _sync_dir(self.path.parent)
            return target


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _read(path: Path, offset: int, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except FileNotFoundError:
        return b""


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
