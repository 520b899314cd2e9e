"""Operator commands on call recordings (`recordings`) and on the audit log (`audit`).

The store is the folder [recording] store_dir (default var/recordings); its files are named by
their SHA-256, and every recording stored or deleted is an entry of a hash chain in the
database (services/recordings.py). `recordings verify` checks it all and exits 1, naming every
problem, when anything was changed.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from callcontrol.adapters import anchor
from callcontrol.adapters.anchor import AnchorError, PublicKey, SigningKey
from callcontrol.adapters.db import audit
from callcontrol.adapters.db.engine import (
    DatabaseError,
    check_schema_current,
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.adapters.db.tables import utcnow
from callcontrol.cli import Parents, command, db_reason, group, row, table, who
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, emit, fail
from callcontrol.config import Settings
from callcontrol.services import chain_checkpoints
from callcontrol.services import recordings as store
from callcontrol.services.recordings import Receipt, RecordingError, Sessions, StoreDamaged

Args = argparse.Namespace

RECORDING = (
    "id", "call_id", "prisoner_id", "cell_id", "number", "started_at", "duration_ms", "channels",
    "codec", "sample_rate", "bytes", "sha256", "file_name", "ingested_at", "entry_hash",
    "purged_at",
)  # fmt: skip
MISSING = ("call_id", "detected_at", "why", "resolved_at")
AUDIT = ("id", "at", "actor", "role", "action", "target", "reason", "detail")


@asynccontextmanager
async def store_sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """Sessions on the settings' database (whose schema must be current). A refusal is exit
    status 2; a damaged store, an unreachable or failing database, a file error, 1."""
    engine = make_engine(database_url(settings))
    try:
        await check_schema_current(engine)
        yield session_factory(engine)
    except StoreDamaged as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except (RecordingError, audit.AuditError) as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except DatabaseError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except DBAPIError as e:
        raise CliError(f"database error: {db_reason(e)}", EXIT_FAILED) from None
    except AnchorError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except OSError as e:
        raise CliError(f"{e.strerror or e}: {e.filename or ''}".rstrip(": "), EXIT_FAILED) from None
    finally:
        await engine.dispose()


def store_dir(settings: Settings) -> Path:
    return settings.path(settings.recording.store_dir)


def signing_key(settings: Settings, create: bool = False) -> SigningKey:
    try:
        return SigningKey.load(settings.path(settings.recording.signing_key_file), create)
    except AnchorError as e:
        raise CliError(str(e), EXIT_FAILED) from None


def checkpoints_file(settings: Settings) -> Path:
    return settings.path(settings.recording.checkpoints_file)


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above 0")
    return int(value)


def done(args: Args, data: Any, text: str) -> int:
    emit(args, data, text)
    return EXIT_OK


def _duration(ms: int) -> str:
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


# --- recordings --------------------------------------------------------------------------------


async def recordings_list(args: Args, settings: Settings) -> int:
    async with store_sessions(settings) as sessions:
        found = await store.list_recordings(sessions, args.prisoner, args.call, args.limit)
    rows = [row(r, RECORDING, prisoner=number) for r, number in found]
    text = table(
        [r | {"duration": _duration(r["duration_ms"]), "sha256": r["sha256"][:12]} for r in rows],
        ("id", "call_id", "prisoner", "number", "started_at", "duration", "channels", "bytes",
         "sha256", "purged_at"),
        "no recordings",
    )  # fmt: skip
    return done(args, rows, text)


async def recordings_verify(args: Args, settings: Settings) -> int:
    public = _public_key(args.public_key) if args.public_key else None
    async with store_sessions(settings) as sessions:
        problems = await store.verify(sessions, store_dir(settings))
        totals = await store.summary(sessions)
        anchored = None
        if public is not None:
            files = [Path(f) for f in args.checkpoints] or [checkpoints_file(settings)]
            found: list[Any] = []
            for f in files:
                found += list(anchor.read(f))
            found += await chain_checkpoints.stored(sessions)
            more, anchored = await chain_checkpoints.verify(sessions, public, found)
            problems += more
    data = {"ok": not problems, "problems": problems} | totals._asdict()
    if anchored is not None:
        data["checkpoints"] = anchored
    if not problems:
        text = (
            f"chain of {totals.recordings} recordings verified ({totals.entries} entries; "
            f"{totals.purged} purged, with their deletion receipts)"
        )
        if anchored is not None:
            text += f"; it extends all {anchored} signed checkpoint(s)"
        return done(args, data, text)
    emit(args, data, "\n".join(problems))
    return fail(f"the recording store failed verification: {len(problems)} problem(s)", EXIT_FAILED)


def _public_key(path: str) -> PublicKey:
    try:
        return PublicKey.load(Path(path).expanduser())
    except AnchorError as e:
        raise CliError(str(e), EXIT_USAGE) from None


async def recordings_checkpoint(args: Args, settings: Settings) -> int:
    key = signing_key(settings, create=True)
    async with store_sessions(settings) as sessions:
        cp = await chain_checkpoints.write(sessions, key, checkpoints_file(settings), utcnow())
    data = {"entries": cp.entries, "head": cp.head, "at": cp.at.isoformat(), "line": cp.line()}
    return done(args, data, cp.line())


def recordings_export_key(args: Args, settings: Settings) -> int:
    key = signing_key(settings, create=True)
    pem = anchor.public_pem(key.public)
    if args.to:
        to = Path(args.to).expanduser()
        if to.exists():
            raise CliError(f"{to} already exists: it is not overwritten")
        try:
            to.write_text(pem)
        except OSError as e:
            raise CliError(f"{to}: {e.strerror}", EXIT_FAILED) from None
        return done(
            args, {"key_id": key.key_id, "to": str(to)}, f"public key {key.key_id} written to {to}"
        )
    return done(args, {"key_id": key.key_id, "public_key": pem}, pem.rstrip("\n"))


async def recordings_missing(args: Args, settings: Settings) -> int:
    async with store_sessions(settings) as sessions:
        rows = [row(m, MISSING) for m in await store.missing(sessions, args.all)]
    return done(args, rows, table(rows, MISSING, "no missing recordings"))


def _receipt(r: Receipt) -> dict[str, Any]:
    return {
        "recording_id": r.recording_id,
        "call_id": r.call_id,
        "sha256": r.sha256,
        "when": r.when.isoformat(timespec="seconds"),
        "why": r.why,
        "by": r.by,
        "file": r.file,
        "chain_entry": r.entry_id,
    }


async def recordings_purge(args: Args, settings: Settings) -> int:
    days = args.older_than_days or settings.recording.retention_days
    # The key first: a purge that could not be anchored by a checkpoint is not started.
    key = None if args.dry_run else signing_key(settings, create=True)
    checkpoint = None
    async with store_sessions(settings) as sessions:
        receipts = await store.purge(
            sessions, store_dir(settings), utcnow(), days, who(args), dry_run=args.dry_run
        )
        if key is not None:
            checkpoint = await chain_checkpoints.write(
                sessions, key, checkpoints_file(settings), utcnow()
            )
    rows = [_receipt(r) for r in receipts]
    verb = "would purge" if args.dry_run else "purged"
    text = f"{verb} {len(rows)} recording(s) that started more than {days} days ago"
    if rows:
        columns = ("recording_id", "call_id", "file", "chain_entry", "sha256")
        text += "\n" + table(rows, columns, "")
    data = {"dry_run": args.dry_run, "older_than_days": days, "receipts": rows}
    if checkpoint is not None:
        data["checkpoint"] = checkpoint.line()
        text += f"\nchain checkpoint signed: {checkpoint.entries} entries"
    return done(args, data, text)


def export_target(value: str) -> Path:
    """Where an export goes: a new file in a folder that exists (else a refusal, exit 2)."""
    to = Path(value).expanduser().absolute()
    if to.exists():
        raise CliError(f"{to} already exists: it is not overwritten")
    if not to.parent.is_dir():
        raise CliError(f"folder {to.parent} does not exist")
    return to


async def recordings_export(args: Args, settings: Settings) -> int:
    to = export_target(args.to)
    async with store_sessions(settings) as sessions:
        rec = await store.export(
            sessions, store_dir(settings), args.id, to, who(args), args.reason or ""
        )
    text = f"recording {rec.id} (call {rec.call_id}) exported to {to}; sha256 {rec.sha256}"
    return done(args, row(rec, RECORDING, to=str(to)), text)


# --- audit -------------------------------------------------------------------------------------


async def audit_list(args: Args, settings: Settings) -> int:
    async with store_sessions(settings) as sessions, sessions() as s:
        entries = await audit.list_entries(s, args.limit, args.action)
    rows = [row(e, AUDIT) for e in entries]
    columns = ("at", "actor", "role", "action", "target", "reason")
    return done(args, rows, table(rows, columns, "no audit entries"))


# --- the commands ------------------------------------------------------------------------------

BY = (("--by",), {"metavar": "NAME", "help": "who does it, for the record (default: you)"})


def _limit(default: int) -> tuple[tuple[str, ...], dict[str, Any]]:
    return (("--limit",), {"metavar": "N", "type": positive, "default": default,
                           "help": f"at most N, the latest first (default {default})"})  # fmt: skip


GROUPS = (
    ("recordings", "call recordings: list, verify, purge, export, the worker",
     "Call recordings, kept as Ogg Opus files named by their SHA-256 in [recording] store_dir. "
     "Every recording stored and every one deleted is an entry of a hash chain in the "
     "database, so that any change to a recording, its row or the chain shows in `verify`; "
     "the chain's head is signed outside the database (`checkpoint`, `export-key`), so that "
     "`verify --public-key` shows a chain rewritten or cut short by the database's owner."),
    ("audit", "who listened, cut, exported, purged, ...",
     "The audit log: every sensitive action (listening in, cutting a call, disabling a cell, "
     "suspending a prisoner, exporting or purging recordings), who did it, when and why. "
     "Append-only: the database refuses to change or remove an entry."),
)  # fmt: skip

COMMANDS: tuple[tuple[str, str, Any, str, str, tuple[Any, ...]], ...] = (
    ("recordings", "list", recordings_list, "list recordings",
     "List recordings, the latest first: call, prisoner, number, when the called party "
     "accepted, duration, channels, size, hash, and when it was purged (if it was).",
     ((("--prisoner",), {"metavar": "P", "help": "only this prisoner's (prison number)"}),
      (("--call",), {"metavar": "CALL", "type": positive, "help": "only this call's"}),
      _limit(100))),
    ("recordings", "verify", recordings_verify, "check the chain, every row and every file",
     "Walk the hash chain and check every recording's row against its entry, every file "
     "against its SHA-256, and every purged recording against its deletion receipt. With "
     "--public-key, also check every signed checkpoint (from --checkpoints FILE, default "
     "[recording] checkpoints_file, and the database's copies): its signature, and that the "
     "chain still extends it (as many entries at least, the same hash at its position). That "
     "catches a chain rewritten whole, or cut short, by someone who owns the database but not "
     "the key. Exit status 0 when all is as it was written; 1, with every problem on a line of "
     "its own, when not.",
     ((("--public-key",), {"metavar": "FILE",
                           "help": "the chain's public key (PEM, from `recordings export-key`); "
                                   "keep your trusted copy off the host"}),
      (("--checkpoints",), {"metavar": "FILE", "action": "append", "default": [],
                            "help": "a checkpoints file to check against (repeatable; default "
                                    "[recording] checkpoints_file); use the copy shipped off "
                                    "the host"}))),
    ("recordings", "checkpoint", recordings_checkpoint, "sign the chain's head now",
     "Sign a checkpoint of the chain's head (its length and last hash, now) with the key in "
     "[recording] signing_key_file (created 0600 if missing) and append it to [recording] "
     "checkpoints_file. The daemon does this by itself when the chain moves, at least hourly, "
     "and every purge does it too.", ()),
    ("recordings", "export-key", recordings_export_key, "print the chain's public key",
     "Print (or write to --to FILE) the public half of the key that signs the chain's "
     "checkpoints, as PEM. Keep it, and copies of [recording] checkpoints_file, off this host: "
     "for example `rsync -a var/chain-checkpoints backup:/srv/evidence/` from cron every few "
     "minutes, or `tail -F var/chain-checkpoints | logger -t callcontrol-chain -n LOGHOST` "
     "into a remote syslog. `recordings verify --public-key FILE --checkpoints COPY` then "
     "shows whether the database's chain still extends what was signed.",
     ((("--to",), {"metavar": "FILE", "help": "write it to FILE (must not exist)"}),)),
    ("recordings", "missing", recordings_missing, "list calls whose recording is missing",
     "List calls that should have a recording but have none (the spool file was missing, "
     "empty or not audio), oldest first.",
     ((("--all",), {"action": "store_true",
                    "help": "also those whose recording was stored later after all"}),)),
    ("recordings", "purge", recordings_purge, "delete recordings past their retention",
     "Delete the recordings that started more than N days ago (default [recording] "
     "retention_days, 90). Each deletion is a receipt in the hash chain (which recording, its "
     "hash, when, why, by whom) and an audit entry, so the chain still verifies.",
     ((("--older-than-days",), {"metavar": "N", "type": positive,
                                "help": "retention in days (default [recording] retention_days)"}),
      (("--dry-run",), {"action": "store_true", "help": "only list what would be deleted"}),
      BY)),
    ("recordings", "export", recordings_export, "copy a recording out, audited",
     "Copy a recording's file to FILE, after checking it against its SHA-256 (an altered file "
     "is refused, exit status 1). FILE must not exist. The audit log records who exported "
     "which recording, where, and why.",
     ((("id",), {"metavar": "ID", "type": positive, "help": "the recording's id (see list)"}),
      (("--to",), {"metavar": "FILE", "required": True, "help": "the copy to write (.ogg)"}),
      (("--reason",), {"metavar": "R", "help": "why it is exported, for the audit log"}),
      BY)),
    ("audit", "list", audit_list, "list the audit log",
     "List the audit log, the latest first.",
     ((("--action",), {"metavar": "A", "help": "only this action (listen, cut, export, ...)"}),
      _limit(100))),
)  # fmt: skip


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `recordings` and `audit` commands."""
    from callcontrol.cli import recordings_worker

    groups = {name: group(sub, name, help, description) for name, help, description in GROUPS}
    for group_name, name, handler, help, description, arguments in COMMANDS:
        parser = command(groups[group_name], name, parents, handler, help, description)
        for flags, options in arguments:
            parser.add_argument(*flags, **options)
    recordings_worker.register(groups["recordings"], parents)
