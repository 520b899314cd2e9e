"""Files and folders only callcontrol's own user may read: 0600 files, 0700 folders.

Everything callcontrol keeps at rest (the SQLite database and its -wal/-shm, the PIN secret,
the API tokens, the recordings store, the lab's handset passwords) is made through here, so its
mode does not depend on the umask of whoever ran the command: a umask only removes bits, but a
folder made with Python's default 0777, or a file SQLite makes with its default 0644, is open to
every local account under a permissive umask (0000 or 0002).

What exists already is not silently trusted: a file of ours that is open to others is tightened
to 0600 and the log says so; a folder others may write in is only warned about (it may be a
shared parent such as /srv, which is the operator's to change).
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("callcontrol.files")

FILE_MODE = 0o600
DIR_MODE = 0o700
OPEN_BITS = 0o077  # any right for the group or others


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) with mode 0700; warn when it exists and is open."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: check it below
            continue
        os.chmod(folder, DIR_MODE)  # whatever the umask
    if not missing:
        warn_if_open(path)
    return path


def warn_if_open(path: Path) -> bool:
    """Log a warning if others may write in the folder ``path`` (replace or add files there:
    a tokens file of their own, another database); True if so. A folder others may only read
    or cross (0755) is left unsaid: the 0600 files in it stay private."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    if mode & 0o022 and not mode & stat.S_ISVTX:
        log.warning(
            "%s is writable by other accounts (mode %04o): `chmod 700 %s` (callcontrol keeps "
            "secrets and records there)",
            path,
            mode,
            path,
        )
        return True
    return False


def tighten(path: Path) -> bool:
    """Make an existing file of ours 0600 if it is open to others; True if it was changed."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mode = stat.S_IMODE(st.st_mode)
    if not mode & OPEN_BITS or not stat.S_ISREG(st.st_mode):
        return False
    try:
        os.chmod(path, mode & ~OPEN_BITS)
    except PermissionError:  # not ours: say so, do not pretend
        log.warning("%s is open to other accounts (mode %04o) and is not ours to chmod", path, mode)
        return False
    log.warning(
        "%s was open to other accounts (mode %04o): tightened to %04o",
        path,
        mode,
        mode & ~OPEN_BITS,
    )
    return True


def create_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists (then tighten it); True if made."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def write_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (a 0600 temporary file, fsync'd, renamed)."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (a 0600 ``.NAME.lock`` file beside it, in a 0700
    folder) for the block: read, change and ``write_file`` it there, and no other process of
    ours changes it meanwhile."""
    private_dir(path.parent)
    lock = path.with_name(f".{path.name}.lock")
    create_file(lock)
    with open(lock, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        yield


Stamp = tuple[int, int, int, int]


def stamp(path: Path) -> Stamp | None:
    """What changes when ``path`` is replaced, written or chmod'ed (inode, size, mtime, mode);
    None when it does not exist. A file re-read only when its stamp changes costs a stat."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
