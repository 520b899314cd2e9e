"""The recording store: ingest, verify, purge, export; missing recordings.

A call's audio, once it has ended, is compressed (adapters/storage/audio.py: Ogg Opus) into the
store folder under the name ``<sha256>.ogg``, and a row in ``recordings`` says what it is. The
same transaction appends the event to the hash chain (domain/chain.py, ``recording_chain``), so
that ``verify`` can show any change to a row, a file, or the chain itself. Deleting a recording
(``purge``, when retention ends) appends a receipt to the chain: it stays verifiable.

Appending to the chain first locks its head, the one row of ``recording_chain_head``, with an
UPDATE: on PostgreSQL that row lock makes concurrent appends wait for each other (and the UPDATE
returns the head as the previous writer committed it), on SQLite the UPDATE takes the database's
write lock at once. Either way the chain cannot fork (``recording_chain.prev_hash`` is unique,
too). Files are written before the transaction and removed after it: a crash leaves at worst a
file that no row names, never a row without its file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters import storage
from callcontrol.adapters.db import audit
from callcontrol.adapters.db.tables import (
    Call,
    ChainEntry,
    ChainHead,
    MissingRecording,
    Prisoner,
    Recording,
    iso,
    utcnow,
)
from callcontrol.adapters.storage import audio
from callcontrol.domain import chain

log = logging.getLogger(__name__)
Sessions = async_sessionmaker[AsyncSession]
# A write: it takes the lock (the row's on PostgreSQL, the database's on SQLite) at once.
LOCK_HEAD = text(
    "UPDATE recording_chain_head SET entries = entries WHERE id = 1 RETURNING entries, entry_hash"
)


# Compressing a recording (ffmpeg, then ffprobe to check what was written) takes the CPU of
# several calls: it is done by the recording worker (`callcontrol recordings worker`,
# services/recording_worker.py), a process of its own at idle priority, one at a time, never
# by the daemon. Here it runs in a thread so that the worker's event loop keeps its lease.


class RecordingError(Exception):
    """A request refused; the message says why, for the operator. Nothing was changed."""


class StoreDamaged(RecordingError):
    """The store is not as it was written (a file missing or altered): run verify."""


class Counter:
    """A count for the metrics: ``value`` only goes up."""

    def __init__(self) -> None:
        self.value = 0

    def inc(self, by: int = 1) -> None:
        self.value += by


# Calls found to have no recording although they should (their spool file missing or broken).
MISSING_RECORDINGS = Counter()


@dataclass
class _Head:
    entries: int
    hash: str


@dataclass(frozen=True)
class Receipt:
    """A recording deleted (or, in a dry run, to be deleted) and its entry in the chain."""

    recording_id: int
    call_id: int
    sha256: str
    when: datetime
    why: str
    by: str
    file: str  # deleted | altered | missing | shared
    entry_id: int | None  # None in a dry run


class Listed(NamedTuple):
    recording: Recording
    prison_number: str


class Summary(NamedTuple):
    entries: int
    recordings: int
    purged: int


# --- the chain ---------------------------------------------------------------------------------


async def _lock_head(s: AsyncSession) -> _Head:
    """Lock the chain head until the end of the transaction; returns it as committed."""
    row = (await s.execute(LOCK_HEAD)).one_or_none()
    if row is None:
        raise StoreDamaged("the recording chain has no head row: the database was tampered with")
    return _Head(int(row.entries), str(row.entry_hash))


async def _append(
    s: AsyncSession, head: _Head, kind: str, recording_id: int, body: str
) -> ChainEntry:
    link = chain.entry_hash(head.hash, body)
    entry = ChainEntry(
        kind=kind, recording_id=recording_id, body=body, prev_hash=head.hash, entry_hash=link,
        at=utcnow(),
    )  # fmt: skip
    s.add(entry)
    await s.flush()
    head.entries, head.hash = head.entries + 1, link
    return entry


async def _save_head(s: AsyncSession, head: _Head) -> None:
    values = {"entries": head.entries, "entry_hash": head.hash, "updated_at": utcnow()}
    await s.execute(update(ChainHead).where(ChainHead.id == 1).values(**values))


# --- ingest ------------------------------------------------------------------------------------


async def _recording_of(s: AsyncSession, call_id: int) -> Recording | None:
    return await s.scalar(select(Recording).where(Recording.call_id == call_id))


async def ingest(
    sessions: Sessions, store_dir: Path, call_id: int, wav_path: Path, bitrate: int
) -> Recording | None:
    """Store the recording of a call from its spool file, then delete that file.

    Idempotent: a call that already has a recording keeps it (returned, nothing else done). A
    spool file missing, empty or unreadable is recorded as a missing recording (None returned).
    A privileged call's audio is never stored: its spool file is deleted, None returned.
    """
    store_dir, wav_path = Path(store_dir), Path(wav_path)
    async with sessions() as s:
        existing = await _recording_of(s, call_id)
        call = await s.get(Call, call_id)
    if existing is not None:
        if wav_path.exists():  # a crash between the commit and the removal below
            wav_path.unlink(missing_ok=True)
            log.info("call %d has recording %d: its spool file removed", call_id, existing.id)
        else:
            log.info("call %d already has recording %d: nothing to do", call_id, existing.id)
        return existing
    if call is None:
        raise RecordingError(f"no call {call_id}")
    if call.privileged:
        if wav_path.exists():  # must never happen: the dialplan records only when told to
            wav_path.unlink(missing_ok=True)
            log.error(
                "call %d is privileged but audio was spooled (%s): deleted, not stored",
                call_id,
                wav_path,
            )
        return None
    try:
        info, digest, size = await asyncio.to_thread(
            storage.store, store_dir, str(call_id), wav_path, bitrate
        )
    except audio.AudioError as e:
        await mark_missing(sessions, call_id, f"its spool file {e}")
        return None
    file_name = storage.file_name(digest)
    async with sessions.begin() as s:
        head = await _lock_head(s)
        existing = await _recording_of(s, call_id)  # an ingest of the same call just ended?
        if existing is None:
            if not (store_dir / file_name).exists():  # a purge of the same audio, meanwhile
                raise RecordingError(
                    f"{file_name} was removed meanwhile: ingest call {call_id} again"
                )
            rec = Recording(
                call_id=call.id, prisoner_id=call.prisoner_id, cell_id=call.cell_id,
                number=call.number, started_at=call.answered_at or call.started_at,
                duration_ms=info.duration_ms, channels=info.channels, codec=info.codec,
                sample_rate=info.sample_rate, bytes=size, sha256=digest, file_name=file_name,
                ingested_at=utcnow(), prev_entry_hash=head.hash,
            )  # fmt: skip
            body = chain.canonical(rec.event())
            rec.entry_hash = chain.entry_hash(head.hash, body)
            s.add(rec)
            await s.flush()
            await _append(s, head, "recording", rec.id, body)
            await _save_head(s, head)
            await s.execute(
                update(MissingRecording)
                .where(MissingRecording.call_id == call_id, MissingRecording.resolved_at.is_(None))
                .values(resolved_at=rec.ingested_at)
            )
            log.info("call %d: recording %d stored as %s", call_id, rec.id, file_name)
        else:
            rec = existing
    wav_path.unlink(missing_ok=True)
    return rec


# --- missing recordings ------------------------------------------------------------------------


async def mark_missing(sessions: Sessions, call_id: int, why: str) -> MissingRecording:
    """Record that a call has no recording although it should (once per call), and say so."""
    async with sessions.begin() as s:
        dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
        result = await s.execute(
            dialect.insert(MissingRecording)
            .values(call_id=call_id, detected_at=utcnow(), why=why)
            .on_conflict_do_nothing(index_elements=["call_id"])
        )
        row = await s.scalar(select(MissingRecording).where(MissingRecording.call_id == call_id))
    assert row is not None
    if result.rowcount:  # type: ignore[attr-defined]
        MISSING_RECORDINGS.inc()
        log.error("call %d should have a recording but %s", call_id, why)
    else:
        log.warning("call %d should have a recording but %s (known already)", call_id, why)
    return row


async def missing(sessions: Sessions, include_resolved: bool = False) -> list[MissingRecording]:
    """The calls without the recording they should have, oldest first."""
    query = select(MissingRecording).order_by(MissingRecording.id)
    if not include_resolved:
        query = query.where(MissingRecording.resolved_at.is_(None))
    async with sessions() as s:
        return list((await s.scalars(query)).all())


# --- reading -----------------------------------------------------------------------------------


async def list_recordings(
    sessions: Sessions, prisoner: str | None = None, call_id: int | None = None, limit: int = 100
) -> list[Listed]:
    """Recordings, latest first; ``prisoner`` is a prison number."""
    query = (
        select(Recording, Prisoner.prison_number)
        .join(Prisoner, Prisoner.id == Recording.prisoner_id)
        .order_by(Recording.started_at.desc(), Recording.id.desc())
        .limit(max(0, limit))
    )
    async with sessions() as s:
        if prisoner is not None:
            known = await s.scalar(select(Prisoner.id).where(Prisoner.prison_number == prisoner))
            if known is None:
                raise RecordingError(f"no prisoner with prison number {prisoner!r}")
            query = query.where(Prisoner.prison_number == prisoner)
        if call_id is not None:
            query = query.where(Recording.call_id == call_id)
        return [Listed(r, n) for r, n in (await s.execute(query)).all()]


async def summary(sessions: Sessions) -> Summary:
    async with sessions() as s:
        entries = await s.scalar(select(func.count()).select_from(ChainEntry))
        total = await s.scalar(select(func.count()).select_from(Recording))
        purged = await s.scalar(select(func.count()).where(Recording.purged_at.is_not(None)))
    return Summary(int(entries or 0), int(total or 0), int(purged or 0))


# --- verify ------------------------------------------------------------------------------------


async def verify(sessions: Sessions, store_dir: Path) -> list[str]:
    """Every problem of the store, one line each; [] when the chain, every row and every file
    are as they were written (and purged recordings have their deletion receipts)."""
    store_dir = Path(store_dir)
    async with sessions() as s:
        head = await s.get(ChainHead, 1)
        entries = list((await s.scalars(select(ChainEntry).order_by(ChainEntry.id))).all())
        rows = list((await s.scalars(select(Recording).order_by(Recording.id))).all())
    links = [chain.Entry(e.id, e.prev_hash, e.body, e.entry_hash) for e in entries]
    problems = chain.verify_chain(links)
    if head is None:
        problems.append("chain head: missing")
    else:
        problems += chain.head_problems(links, head.entries, head.entry_hash)
    problems += chain.check_records([e.stored() for e in entries], [r.row() for r in rows])
    kept = {r.sha256 for r in rows if r.purged_at is None}
    paths = [store_dir / r.file_name for r in rows if r.purged_at is None or r.sha256 not in kept]
    hashes = await asyncio.to_thread(storage.hashes, sorted(set(paths)))
    for r in rows:
        found = hashes.get(store_dir / r.file_name)
        label = f"recording {r.id} (call {r.call_id})"
        if r.purged_at is not None:
            if found is not None and r.sha256 not in kept:
                problems.append(
                    f"{label}: purged on {iso(r.purged_at)} but its file {r.file_name} is still "
                    "in the store (run `callcontrol recordings purge`)"
                )
        elif found is None:
            problems.append(f"{label}: file {r.file_name} missing")
        elif found != r.sha256:
            problems.append(f"{label}: file {r.file_name} altered (its SHA-256 is now {found})")
    return problems


# --- purge and export --------------------------------------------------------------------------


async def purge(
    sessions: Sessions,
    store_dir: Path,
    now: datetime,
    retention_days: int,
    actor: str,
    role: str = "admin",
    dry_run: bool = False,
) -> list[Receipt]:
    """Delete the recordings that started more than ``retention_days`` before ``now``: each
    gets a deletion receipt in the chain and an audit entry; the files go after the commit."""
    if retention_days < 1:
        raise RecordingError(f"retention of {retention_days} days: at least 1 day is kept")
    if now.tzinfo is None:
        raise ValueError("purge needs an aware time (UTC)")
    store_dir, why = Path(store_dir), f"retention {retention_days} days"
    due_at = now - timedelta(days=retention_days)
    receipts: list[Receipt] = []
    async with sessions.begin() as s:
        head = None if dry_run else await _lock_head(s)
        kept_rows = select(Recording).where(Recording.purged_at.is_(None)).order_by(Recording.id)
        kept = list((await s.scalars(kept_rows)).all())
        due = [r for r in kept if r.started_at < due_at]
        shared = {r.sha256 for r in kept if r.started_at >= due_at}  # the same audio, still kept
        for rec in due:
            state = await asyncio.to_thread(
                storage.file_state, store_dir / rec.file_name, rec.sha256
            )
            state = "shared" if rec.sha256 in shared else {"intact": "deleted"}.get(state, state)
            entry_id = None
            if head is not None:
                event = {
                    "kind": "deletion", "recording_id": rec.id, "call_id": rec.call_id,
                    "sha256": rec.sha256, "when": iso(now), "why": why, "by": actor,
                    "file": state,
                }  # fmt: skip
                entry = await _append(s, head, "deletion", rec.id, chain.canonical(event))
                entry_id = entry.id
                rec.purged_at = now
                await audit.record(
                    s, actor=actor, role=role, action="purge", target=f"recording {rec.id}",
                    reason=why, detail=f"call {rec.call_id}; sha256 {rec.sha256}; file {state}; "
                    f"chain entry {entry.id}",
                )  # fmt: skip
            receipts.append(
                Receipt(rec.id, rec.call_id, rec.sha256, now, why, actor, state, entry_id)
            )
        if head is not None and due:
            await _save_head(s, head)
    if not dry_run:
        await _remove_purged_files(sessions, store_dir)
    return receipts


async def _remove_purged_files(sessions: Sessions, store_dir: Path) -> None:
    """Remove the files of purged recordings (also those a crash left), unless the same audio
    is a recording still kept. Under the chain's lock: an ingest of the same audio cannot
    commit meanwhile (it checks its file is still there once it holds the lock)."""
    async with sessions.begin() as s:
        await _lock_head(s)
        rows = (await s.execute(select(Recording.sha256, Recording.purged_at))).all()
        kept = {sha for sha, purged_at in rows if purged_at is None}
        gone = sorted({sha for sha, purged_at in rows if purged_at is not None} - kept)
        await asyncio.to_thread(
            storage.remove, [store_dir / storage.file_name(sha) for sha in gone]
        )


async def export(
    sessions: Sessions,
    store_dir: Path,
    recording_id: int,
    to_path: Path,
    actor: str,
    reason: str = "",
    role: str = "admin",
) -> Recording:
    """Copy a recording's file to ``to_path`` (never over an existing file), once its copy is
    checked against the recorded SHA-256 (an altered file is refused); the audit log says who
    exported what, and why."""
    store_dir, to_path = Path(store_dir), Path(to_path)
    if to_path.exists():
        raise RecordingError(f"{to_path} already exists: it is not overwritten")
    if not to_path.parent.is_dir():
        raise RecordingError(f"folder {to_path.parent} does not exist")
    async with sessions() as s:
        rec = await s.get(Recording, recording_id)
    if rec is None:
        raise RecordingError(f"no recording {recording_id}")
    label = f"recording {rec.id} (call {rec.call_id})"
    if rec.purged_at is not None:
        raise RecordingError(f"{label} was purged on {iso(rec.purged_at)}")
    try:
        tmp, found = await asyncio.to_thread(storage.stage_copy, store_dir / rec.file_name, to_path)
    except FileNotFoundError:
        raise StoreDamaged(f"{label}: file {rec.file_name} missing") from None
    published = False
    try:
        if found != rec.sha256:
            raise StoreDamaged(
                f"{label}: file {rec.file_name} altered (its SHA-256 is now {found}): not exported"
            )
        async with sessions.begin() as s:  # the copy gets its name only with its audit entry
            await audit.record(
                s, actor=actor, role=role, action="export", target=f"recording {rec.id}",
                reason=reason, detail=f"call {rec.call_id}; sha256 {rec.sha256}; to {to_path}",
            )  # fmt: skip
            await asyncio.to_thread(storage.publish, tmp, to_path)
            published = True
    except FileExistsError:
        raise RecordingError(f"{to_path} already exists: it is not overwritten") from None
    except BaseException:
        if published:  # the audit entry was not written after all
            await asyncio.to_thread(to_path.unlink, missing_ok=True)
        raise
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    return rec
