"""`callcontrol backup --to DIR` and `callcontrol restore --from DIR` (callcontrol/backup/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from callcontrol.adapters.db.dump import DumpError
from callcontrol.backup import site
from callcontrol.backup.manifest import BackupError
from callcontrol.cli import Parents, db_reason
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit, fail
from callcontrol.config import Settings

Args = argparse.Namespace


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().absolute() if value else None


async def _guarded(work: Any) -> dict[str, Any]:
    try:
        return await work  # type: ignore[no-any-return]
    except (BackupError, DumpError) as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except (OSError, DBAPIError) as e:
        raise CliError(f"{db_reason(e)}", EXIT_FAILED) from None


async def backup(args: Args, settings: Settings) -> int:
    to = _path(args.to)
    assert to is not None
    made = await _guarded(site.backup(settings, to, args.recordings, _path(args.pg_bindir)))
    kept = sorted(k for k, v in made["keys"].items() if str(v).startswith("keys/"))
    text = (
        f"backed up to {to}: the {made['database']['backend']} database (schema "
        f"{made['database']['revision']}), {made['recordings']['count']} recording(s) "
        f"({'copied' if args.recordings == 'copy' else 'listed, not copied'}), keys: "
        f"{', '.join(kept) or 'none'}; {len(made['files'])} files in manifest.json"
    )
    emit(args, made, text)
    if made["problems"]:
        return fail("; ".join(made["problems"][:5]), EXIT_FAILED)
    return EXIT_OK


async def restore(args: Args, settings: Settings) -> int:
    source = _path(args.from_)
    assert source is not None
    done = await _guarded(site.restore(settings, source, args.force, _path(args.pg_bindir)))
    rec = done["recordings"]
    text = (
        f"restored {done['database']} (schema {done['revision']}); {len(done['keys'])} key "
        f"file(s); {rec['in_store']} of {rec['listed']} recording(s) in the store"
    )
    if rec["in_store"] < rec["listed"]:
        text += " (put the others back from the store's own backup)"
    text += (
        ". Next: "
        + ("`callcontrol db upgrade`, then " if done["upgrade_needed"] else "")
        + "`callcontrol recordings verify`."
    )
    emit(args, done, text)
    return EXIT_OK


BACKUP_HELP = """\
Copy the site into DIR (a new or empty folder, made 0700; every file 0600): the database
(pg_dump of the server's own major version, or SQLite's online backup: a consistent copy while
the daemon runs), the recordings (copied, or with --recordings reference only listed with
their SHA-256, for a store backed up by its own means), and the files that must survive and
are not in the database: the PIN secret (and previous ones), the chain's signing key and
checkpoints file, the API tokens file, the AGI and AMI secrets. manifest.json, written last,
lists every file's SHA-256. Exit status 1 when something could not be copied as stored."""

RESTORE_HELP = """\
Rebuild a site from a backup into the configured places: the database named by [database]
url (which must exist and be empty: createdb for PostgreSQL; a new file for SQLite), the key
files at their configured paths and the recordings into [recording] store_dir. The manifest is
checked first (every file's SHA-256), and nothing is written if a key file or recording
already there differs from the backup's, or the database is not empty, unless --force."""


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `backup` and `restore` commands."""
    fmt = argparse.RawDescriptionHelpFormatter
    what = "copy the site (database, recordings, keys) into a folder"
    b = sub.add_parser("backup", parents=parents, help=what, description=BACKUP_HELP,
                       formatter_class=fmt)  # fmt: skip
    b.set_defaults(handler=backup)
    b.add_argument("--to", required=True, metavar="DIR", help="a new (or empty) folder")
    b.add_argument("--recordings", choices=site.RECORDING_MODES, default="copy",
                   help="copy the recordings (default) or only reference them")  # fmt: skip
    r = sub.add_parser("restore", parents=parents, help="rebuild a site from a backup",
                       description=RESTORE_HELP, formatter_class=fmt)  # fmt: skip
    r.set_defaults(handler=restore)
    r.add_argument("--from", dest="from_", required=True, metavar="DIR", help="the backup")
    r.add_argument("--force", action="store_true",
                   help="overwrite a non-empty database, key files, recordings")  # fmt: skip
    for parser in (b, r):
        parser.add_argument("--pg-bindir", metavar="DIR",
                            help="where pg_dump/pg_restore are (default: the server's version's "
                                 "/usr/lib/postgresql/N/bin, else the PATH)")  # fmt: skip
