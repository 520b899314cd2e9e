"""A backup's manifest: every file of the backup folder with its size and SHA-256.

Written last (a backup without one is unfinished) and checked first: a restore refuses a
backup with a file missing, changed, or not listed. It detects damage and mistakes, not a
forger who rewrites the manifest too: keep backups where only their owner can write (the
folder is 0700 and every file 0600), and a copy off the host.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from callcontrol import private_files
from callcontrol.adapters.storage import sha256_file

FORMAT = "callcontrol-backup/1"
MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup cannot be made, read or restored (the message says why)."""


def _files(folder: Path) -> dict[str, Path]:
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    }


def write(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``folder``/manifest.json listing every other file; returns what it holds."""
    files = {
        name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for name, path in _files(folder).items()
    }
    manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), **meta}
    manifest["files"] = files
    private_files.write_file(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and name != MANIFEST


def read_verified(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder``, once every file is as it lists; BackupError naming the
    problems otherwise."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"{path} is missing: not a backup, or an unfinished one") from None
    except (OSError, ValueError) as e:
        raise BackupError(f"{path} cannot be read: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a {FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(_safe(str(n)) for n in listed):
        raise BackupError(f"{path} lists no files, or a name outside the backup")
    present = _files(folder)
    problems = [f"{n}: not listed in the manifest" for n in present if n not in listed]
    for name, want in listed.items():
        file = present.get(name)
        if file is None:
            problems.append(f"{name}: missing")
        elif file.stat().st_size != want.get("bytes") or sha256_file(file) != want.get("sha256"):
            problems.append(f"{name}: changed since the backup (size or SHA-256 differs)")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise BackupError(
            f"the backup in {folder} fails its manifest: {'; '.join(problems[:5])}{more}"
        )
    return manifest
