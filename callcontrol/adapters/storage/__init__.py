"""Files of the recording store: each recording is ``<sha256>.ogg`` in one folder.

Writing is atomic: compressed to a temporary name in the store, hashed, synced, then renamed to
its hash (the same audio always gives the same bytes, hence the same name). Blocking: call from
a thread in async code. The audio itself is audio.py's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from callcontrol import private_files
from callcontrol.adapters.storage import audio

CHUNK = 1 << 20
SUFFIX = ".ogg"


def file_name(sha256: str) -> str:
    return f"{sha256}{SUFFIX}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(folder: Path, prefix: str, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def store(
    store_dir: Path, tag: str, source: Path, bitrate: int
) -> tuple[audio.AudioInfo, str, int]:
    """Compress ``source`` into the store; returns what the file holds, its SHA-256 and size.

    Raises audio.AudioError when the source is missing, empty or not audio. A file already
    there under the same name is kept if it still has that hash, else replaced."""
    private_files.private_dir(store_dir)  # 0700: recordings are for the daemon's user only
    tmp = _temporary(store_dir, f".ingest-{tag}-", SUFFIX)
    try:
        info = audio.compress(source, tmp, bitrate)
        digest, size = sha256_file(tmp), tmp.stat().st_size
        target = store_dir / file_name(digest)
        if not target.exists() or sha256_file(target) != digest:
            tmp.chmod(0o400)  # read-only, the owner's only: not changed by mistake
            _fsync(tmp)
            os.replace(tmp, target)
            _fsync(store_dir)
    finally:
        tmp.unlink(missing_ok=True)
    return info, digest, size


def file_state(path: Path, sha256: str) -> str:
    """A stored file against its hash: intact, altered or missing."""
    try:
        return "intact" if sha256_file(path) == sha256 else "altered"
    except FileNotFoundError:
        return "missing"


def hashes(paths: list[Path]) -> dict[Path, str | None]:
    """The SHA-256 of each file (None: missing)."""
    out: dict[Path, str | None] = {}
    for path in paths:
        try:
            out[path] = sha256_file(path)
        except FileNotFoundError:
            out[path] = None
    return out


def remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def stage_copy(source: Path, to_path: Path) -> tuple[Path, str]:
    """Copy ``source`` to a hidden temporary file beside ``to_path``; returns it and the SHA-256
    of the copy (what would be handed over). FileNotFoundError when the source is missing."""
    tmp = _temporary(to_path.parent, f".{to_path.name}.", ".partial")
    try:
        shutil.copyfile(source, tmp)
        return tmp, sha256_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish(tmp: Path, to_path: Path) -> None:
    """Give a staged copy its name; FileExistsError (and the copy removed) if it is taken."""
    try:
        try:
            os.link(tmp, to_path)  # unlike a rename, never replaces a file
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            if to_path.exists():
                raise FileExistsError(to_path) from None
            os.replace(tmp, to_path)
    finally:
        tmp.unlink(missing_ok=True)


def read_bounded(path: Path, longest: int) -> bytes:
    """The whole file, read through one descriptor; ValueError when it holds more than
    ``longest`` bytes (nothing more is read), FileNotFoundError when it is missing."""
    with path.open("rb") as f:
        data = f.read(longest + 1)
    if len(data) > longest:
        raise ValueError(f"{path} holds more than {longest} bytes")
    return data


class StoreFiles:
    """The store's files for reading (services/recording_access.py's AudioFiles)."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = Path(store_dir)

    async def read(self, file_name: str, longest: int) -> bytes:
        if "/" in file_name or "\\" in file_name or file_name.startswith(".") or not file_name:
            raise FileNotFoundError(file_name)  # only a file of the store itself is ever read
        return await asyncio.to_thread(read_bounded, self.store_dir / file_name, longest)
