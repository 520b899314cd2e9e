"""What a site is made of, copied out (`backup`) and put back (`restore`).

A backup folder (0700, every file 0600):

    manifest.json          every other file's size and SHA-256 (manifest.py), and what this is
    database.pgdump        pg_dump -Fc, or database.sqlite3 (adapters/db/dump.py)
    recordings.json        the recording store's manifest: each stored recording's file name,
                           SHA-256 and size, as the database copy lists them
    recordings/HASH.ogg    the recordings themselves, unless made with --recordings reference
    keys/NAME              the files that must survive and are not in the database (KEYS)

``--recordings copy`` (the default) makes a backup that restores a whole site on its own;
``reference`` lists the recordings without copying them, for a store that is backed up by its
own means (a snapshotting file system, a NAS): the restore then checks that the store holds
them. The database is copied first and the recordings listed from that copy, so the backup
never lacks a recording its database names (a purge that runs meanwhile can still remove one:
do not run both at once).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcontrol import private_files
from callcontrol.adapters.db import dump
from callcontrol.adapters.db.engine import database_url, head_revision, redact
from callcontrol.adapters.storage import file_state, sha256_file
from callcontrol.backup import manifest
from callcontrol.backup.manifest import BackupError
from callcontrol.config import Settings

# The files that must survive, by their name in a backup: without the PIN secret no PIN
# matches; without the signing key no new checkpoint continues the old ones; the checkpoints
# file is the evidence shipped off the host; the tokens file holds the staff's API tokens,
# the staff file their console accounts;
# the AGI and AMI secrets are also in Asterisk's configuration, which they must match.
KEYS: tuple[tuple[str, Callable[[Settings], str]], ...] = (
    ("pin-secret", lambda s: s.security.pin_secret_file),
    ("pin-secret.previous", lambda s: s.security.pin_previous_secrets_file),
    ("chain-signing-key", lambda s: s.recording.signing_key_file),
    ("chain-checkpoints", lambda s: s.recording.checkpoints_file),
    ("api-tokens", lambda s: s.http.tokens_file),
    ("staff", lambda s: s.console.staff_file),
    ("agi-secret", lambda s: s.agi.secret_file),
    ("ami-secret", lambda s: s.ami.secret_file),
)
RECORDING_MODES = ("copy", "reference")
DB_FILES = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}


def _copy_private(source: Path, target: Path) -> None:
    private_files.private_dir(target.parent)
    private_files.create_file(target)
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())


def _new_folder(to: Path) -> None:
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise BackupError(f"{to} exists and is not an empty folder: back up into a new one")
    private_files.private_dir(to)
    to.chmod(private_files.DIR_MODE)


# --- backup ------------------------------------------------------------------------------------


def _copy_keys(settings: Settings, to: Path) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for name, setting in KEYS:
        path = settings.path(setting(settings))
        if name == "pin-secret" and settings.security.pin_secret:
            keys[name] = "given in the settings ([security] pin_secret): keep the settings"
        elif path.is_file():
            _copy_private(path, to / "keys" / name)
            keys[name] = f"keys/{name}"
        else:
            keys[name] = None  # the site has none (yet)
    return keys


def _copy_recordings(
    store_dir: Path, files: list[dump.StoredFile], to: Path, copy: bool
) -> list[str]:
    """Write the store's manifest and, with ``copy``, the files; returns the problems."""
    listing = [{"file_name": f.file_name, "sha256": f.sha256, "bytes": f.bytes} for f in files]
    private_files.write_file(to / "recordings.json", json.dumps(listing, indent=0))
    problems = []
    for f in files if copy else []:
        target = to / "recordings" / f.file_name
        try:
            _copy_private(store_dir / f.file_name, target)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            problems.append(f"recording {f.file_name} is missing from the store")
            continue
        if sha256_file(target) != f.sha256:
            problems.append(f"recording {f.file_name} in the store differs from its SHA-256")
    return problems


async def backup(
    settings: Settings, to: Path, recordings: str = "copy", pg_bindir: Path | None = None
) -> dict[str, Any]:
    """Back the site up into the new folder ``to``; returns the manifest (with "problems":
    recordings that could not be copied as they were stored)."""
    if recordings not in RECORDING_MODES:
        raise BackupError(f"--recordings must be one of {', '.join(RECORDING_MODES)}")
    url = database_url(settings)
    _new_folder(to)
    db_file = DB_FILES[dump.backend(url)]
    dumped = await dump.dump(url, to / db_file, pg_bindir)
    keys = _copy_keys(settings, to)
    store_dir = settings.path(settings.recording.store_dir)
    problems = _copy_recordings(store_dir, list(dumped.recordings), to, recordings == "copy")
    meta = {
        "database": {"backend": dumped.backend, "file": db_file, "revision": dumped.revision,
                     "server_major": dumped.server_major},
        "recordings": {"mode": recordings, "count": len(dumped.recordings),
                       "list": "recordings.json", "store_dir": str(store_dir)},
        "keys": keys,
        "problems": problems,
    }  # fmt: skip
    return manifest.write(to, meta)


# --- restore -----------------------------------------------------------------------------------


def _conflicts(settings: Settings, source: Path, found: dict[str, Any]) -> list[str]:
    """What is there already and differs from the backup (overwritten only with --force)."""
    conflicts = []
    for name, setting in KEYS:
        if isinstance(found["keys"].get(name), str) and found["keys"][name].startswith("keys/"):
            target = settings.path(setting(settings))
            if target.exists() and target.read_bytes() != (source / "keys" / name).read_bytes():
                conflicts.append(f"{target} exists and differs from the backup's {name}")
    if found["recordings"]["mode"] == "copy":
        store_dir = settings.path(settings.recording.store_dir)
        for f in _listing(source):
            if file_state(store_dir / f["file_name"], f["sha256"]) == "altered":
                conflicts.append(f"{store_dir / f['file_name']} exists and differs")
    return conflicts


def _listing(source: Path) -> list[dict[str, Any]]:
    data = json.loads((source / "recordings.json").read_text())
    if not isinstance(data, list):
        raise BackupError("recordings.json is not a list of recordings")
    return data


def _put_keys(settings: Settings, source: Path, found: dict[str, Any]) -> list[str]:
    restored = []
    for name, setting in KEYS:
        if not str(found["keys"].get(name) or "").startswith("keys/"):
            continue
        target = settings.path(setting(settings))
        private_files.private_dir(target.parent)
        tmp = target.with_name(f".{target.name}.restoring")
        _copy_private(source / "keys" / name, tmp)
        os.replace(tmp, target)
        if name == "agi-secret" and settings.agi.secret_group:  # Asterisk's group reads it
            shutil.chown(target, group=settings.agi.secret_group)
            target.chmod(0o640)
        restored.append(str(target))
    return restored


def _put_recordings(settings: Settings, source: Path, mode: str) -> dict[str, int]:
    store_dir = settings.path(settings.recording.store_dir)
    private_files.private_dir(store_dir)
    listing = _listing(source)
    present = 0
    for f in listing:
        target = store_dir / f["file_name"]
        if mode == "copy" and file_state(target, f["sha256"]) != "intact":
            target.unlink(missing_ok=True)
            _copy_private(source / "recordings" / f["file_name"], target)
            target.chmod(0o400)  # as the store keeps them: read-only, the owner's only
        present += file_state(target, f["sha256"]) == "intact"
    return {"listed": len(listing), "in_store": present}


async def restore(
    settings: Settings, source: Path, force: bool = False, pg_bindir: Path | None = None
) -> dict[str, Any]:
    """Rebuild the site from the backup in ``source`` into the configured database (empty
    unless ``force``), key files and store. Everything is checked before anything is written."""
    found = manifest.read_verified(source)
    url = database_url(settings)
    if found["database"]["backend"] != dump.backend(url):
        raise BackupError(
            f"the backup is of a {found['database']['backend']} database, the settings name a "
            f"{dump.backend(url)} one"
        )
    conflicts = _conflicts(settings, source, found)
    if conflicts and not force:
        raise BackupError("; ".join(conflicts[:5]) + " (restore with --force to overwrite)")
    if not force and not await dump.is_empty(url):
        raise BackupError("the database is not empty: restore into an empty one (or --force)")
    await dump.restore(url, source / found["database"]["file"], replace=force, bindir=pg_bindir)
    keys = _put_keys(settings, source, found)
    recordings = _put_recordings(settings, source, found["recordings"]["mode"])
    revision = found["database"]["revision"]
    return {
        "database": redact(url),
        "revision": revision,
        "upgrade_needed": revision != head_revision(),
        "keys": keys,
        "recordings": recordings | {"mode": found["recordings"]["mode"]},
    }
