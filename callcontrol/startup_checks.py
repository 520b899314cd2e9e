"""What the daemon checks before it starts: refuse at once, with one line, rather than run
half-blind (a journal it cannot read settles no call it missed; a spool it cannot read loses
recordings; a store it cannot write keeps none).

Outside the lab (``[lab] enabled`` false) the paths Asterisk and the daemon share are required
settings, with no default: ``[asterisk] journal_file`` and ``[recording] spool_dir``; while the
daemon syncs the cells (``[asterisk] sync_cells``) the folder of ``[asterisk] cells_conf`` must
be writable. In the lab the lab's own folders are used, which the lab makes.

A journal that does not exist yet is fine when its folder can be read: Asterisk creates it at
the first call it writes (the dialplan appends to it); that is logged once, at start. The
schema must be current and the FastAGI secret present everywhere (app.agi_secret).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from callcontrol.config import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("callcontrol.daemon")


class StartupRefused(ConfigError):
    """The daemon cannot serve with these settings; the message says why, in one line."""


def _required(value: str, name: str, what: str) -> None:
    if not value:
        raise StartupRefused(f"{name} is not set: {what} (required outside the lab)")


def readable_dir(path: Path, what: str) -> None:
    """StartupRefused unless ``path`` is a folder whose entries this process can list."""
    try:
        os.listdir(path)
    except FileNotFoundError:
        raise StartupRefused(f"{what} {path} does not exist") from None
    except NotADirectoryError:
        raise StartupRefused(f"{what} {path} is not a folder") from None
    except OSError as e:
        raise StartupRefused(f"{what} {path} cannot be read: {e.strerror}") from None
    if not os.access(path, os.R_OK | os.X_OK):
        raise StartupRefused(f"{what} {path} cannot be read by this user")


def writable_dir(path: Path, what: str, create: bool = False) -> None:
    """StartupRefused unless a file can be created in ``path`` (made first if ``create``)."""
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryFile(dir=path, prefix=".callcontrol-check-"):
            pass
    except FileNotFoundError:
        raise StartupRefused(f"{what} {path} does not exist") from None
    except OSError as e:
        raise StartupRefused(f"{what} {path} cannot be written: {e.strerror}") from None


def journal_ok(path: Path) -> bool:
    """Refuse a journal that cannot be read; False (logged) when it does not exist yet."""
    readable_dir(path.parent, "the call journal's folder ([asterisk] journal_file)")
    if not path.exists():
        log.warning(
            "call journal %s does not exist yet: Asterisk writes it at its first call; "
            "it is read as soon as it appears",
            path,
        )
        return False
    if path.is_dir():
        raise StartupRefused(f"the call journal {path} ([asterisk] journal_file) is a folder")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise StartupRefused(f"the call journal {path} cannot be read: {e.strerror}") from None
    return True


def check_paths(settings: Settings, journal: Path, spool: Path) -> None:
    """The file-system checks: StartupRefused (one line) at the first that fails.

    ``journal`` and ``spool`` are the paths the daemon will use. In the lab only the store is
    checked: the lab's own folders are made by `callcontrol-lab up`, maybe after the daemon."""
    s = settings
    store = s.path(s.recording.store_dir)
    writable_dir(store, "the recording store ([recording] store_dir)", create=True)
    if s.lab.enabled:
        return
    journal_what = "where Asterisk's dialplan writes each call's end (CC_JOURNAL)"
    _required(s.asterisk.journal_file, "[asterisk] journal_file", journal_what)
    spool_what = "where MixMonitor writes the recordings (CC_RECORDINGS)"
    _required(s.recording.spool_dir, "[recording] spool_dir", spool_what)
    journal_ok(journal)
    # The daemon deletes what it ingested: the spool must be readable and writable.
    readable_dir(spool, "the recordings spool ([recording] spool_dir)")
    writable_dir(spool, "the recordings spool ([recording] spool_dir)")
    if s.asterisk.sync_cells:
        from callcontrol.adapters.asterisk.control import cells_conf_path

        cells = cells_conf_path(s).parent
        writable_dir(cells, "the folder of the cells' PJSIP file ([asterisk] cells_conf)")


async def check_schema(engine: AsyncEngine) -> None:
    """StartupRefused unless the database is reachable and at the latest schema."""
    from callcontrol.adapters.db.engine import DatabaseError, check_schema_current

    try:
        await check_schema_current(engine)
    except DatabaseError as e:
        raise StartupRefused(str(e)) from None
    except (OSError, TimeoutError) as e:
        raise StartupRefused(f"database cannot be reached: {e}") from None
