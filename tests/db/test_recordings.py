"""The recording store on real databases (SQLite and PostgreSQL) with real audio: ingest,
verify (and what tampering it catches), purge with receipts, audited export, concurrency."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import struct
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters import storage
from callcontrol.adapters.db import audit
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.tables import (
    AuditEntry,
    ChainEntry,
    ChainHead,
    Recording,
)
from callcontrol.adapters.storage import audio
from callcontrol.adapters.storage.audio import AudioSegment
from callcontrol.domain.chain import GENESIS, parse
from callcontrol.services import recordings as store
from callcontrol.services.recordings import RecordingError, StoreDamaged

Sessions = async_sessionmaker[AsyncSession]
_serial = itertools.count(1)
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
RATE = 8000


def make_wav(path: Path, seconds: float = 3.0, left: float = 1000.0, right: float = 400.0) -> Path:
    """A stereo 8 kHz 16-bit WAV: one tone on the left (the handset), another on the right."""
    frames = bytearray()
    for i in range(int(seconds * RATE)):
        frames += struct.pack(
            "<hh",
            round(9000 * math.sin(2 * math.pi * left * i / RATE)),
            round(9000 * math.sin(2 * math.pi * right * i / RATE)),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return path


def power(samples: list[int], frequency: float) -> float:
    """The power of one frequency in the samples (Goertzel)."""
    k = 2 * math.cos(2 * math.pi * frequency / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


async def add_call(
    sessions: Sessions, answered: datetime | None = None, privileged: bool = False
) -> int:
    """An ended call (with its cell, prisoner and decision); returns its id."""
    n = next(_serial)
    answered = answered or datetime(2027, 2, 20, 10, 0, 5, tzinfo=UTC)
    async with sessions.begin() as s:
        cell = m.Cell(name=f"R{n}", sip_username=f"R{n}", sip_md5_cred="0" * 32)
        s.add(cell)
        await s.flush()
        prisoner = m.Prisoner(prison_number=f"RP{n}", name="T", pin_hash="h1$00", cell_id=cell.id)
        decision = m.CallDecision(handset="R", dialled="0", outcome="allow", reason="ok")
        s.add_all([prisoner, decision])
        await s.flush()
        call = m.Call(
            decision_id=decision.id, prisoner_id=prisoner.id, cell_id=cell.id,
            number="+442079460000", channel=f"PJSIP/R{n}", uniqueid=f"r{n}",
            privileged=privileged, started_at=answered - timedelta(seconds=5),
            answered_at=answered, ended_at=answered + timedelta(seconds=3),
        )  # fmt: skip
        s.add(call)
        await s.flush()
        return call.id


async def ingest_new(
    sessions: Sessions,
    store_dir: Path,
    tmp_path: Path,
    answered: datetime | None = None,
    **tones: float,
) -> Recording:
    call_id = await add_call(sessions, answered)
    wav = make_wav(tmp_path / "spool" / f"{call_id}.wav", **tones)
    rec = await store.ingest(sessions, store_dir, call_id, wav, 24000)
    assert rec is not None
    return rec


async def count(sessions: Sessions, model: type) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def execute(sessions: Sessions, *statements: str) -> None:
    async with sessions.begin() as s:
        for statement in statements:
            await s.execute(text(statement))


async def drop_guards(sessions: Sessions, table: str) -> None:
    """What someone with the database's owner rights could do: remove a table's triggers."""
    async with sessions.begin() as s:
        if s.get_bind().dialect.name == "postgresql":
            await s.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            return
        names = await s.scalars(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        )
        for name in list(names):
            await s.execute(text(f"DROP TRIGGER {name}"))


def files(folder: Path) -> list[str]:
    """The names in a folder, sorted (temporary files, hidden, included)."""
    return sorted(p.name for p in folder.iterdir())


def alter_byte(path: Path, at: int = 200) -> None:
    path.chmod(0o640)
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))


async def test_ingest_stores_stereo_opus_named_by_its_hash(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    call_id = await add_call(sessions)
    wav = make_wav(tmp_path / "spool" / "call.wav")
    rec = await store.ingest(sessions, store_dir, call_id, wav, 24000)
    assert rec is not None and rec.call_id == call_id
    path = store_dir / rec.file_name
    assert rec.file_name == f"{rec.sha256}.ogg" and storage.sha256_file(path) == rec.sha256
    assert not wav.exists()  # the spool file is gone once stored
    assert files(store_dir) == [rec.file_name]  # no temporary left
    info = audio.probe(path)
    assert (info.codec, info.channels, info.sample_rate) == ("opus", 2, 8000)
    assert abs(info.duration_ms - 3000) <= 100 and abs(rec.duration_ms - 3000) <= 100
    assert (rec.codec, rec.channels, rec.sample_rate) == ("opus", 2, 8000)
    assert rec.bytes == path.stat().st_size and rec.bytes * 5 < 3 * RATE * 4
    async with sessions() as s:
        call = await s.get(m.Call, call_id)
        entries = list((await s.scalars(select(ChainEntry))).all())
        head = await s.get(ChainHead, 1)
    assert call is not None and rec.started_at == call.answered_at
    assert rec.prisoner_id == call.prisoner_id and rec.cell_id == call.cell_id
    assert len(entries) == 1 and entries[0].kind == "recording"
    assert entries[0].prev_hash == GENESIS == rec.prev_entry_hash
    assert entries[0].entry_hash == rec.entry_hash == (head.entry_hash if head else None)
    assert parse(entries[0].body) == rec.event()
    # Stereo stays stereo: the 1 kHz tone is on the left, the 400 Hz one on the right.
    left, right = (
        list(c.get_array_of_samples()[4000:12000])
        for c in AudioSegment.from_file(path).set_frame_rate(RATE).split_to_mono()
    )
    assert power(left, 1000) > 50 * power(left, 400)
    assert power(right, 400) > 50 * power(right, 1000)


async def test_ingest_is_idempotent(sessions: Sessions, store_dir: Path, tmp_path: Path) -> None:
    call_id = await add_call(sessions)
    first = await store.ingest(sessions, store_dir, call_id, make_wav(tmp_path / "a.wav"), 24000)
    again = make_wav(tmp_path / "b.wav", seconds=1.0)
    second = await store.ingest(sessions, store_dir, call_id, again, 24000)
    assert first is not None and second is not None and second.id == first.id
    assert await count(sessions, Recording) == 1 and await count(sessions, ChainEntry) == 1
    assert files(store_dir) == [first.file_name]
    # The same audio ingested twice (a crash between the file and the row) is the same file.
    info, digest, size = storage.store(store_dir, "x", make_wav(tmp_path / "c.wav"), 24000)
    assert digest == first.sha256 and size == first.bytes
    assert files(store_dir) == [first.file_name]


async def test_missing_recording(
    sessions: Sessions, store_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = store.MISSING_RECORDINGS.value
    nowhere, empty, junk = (
        await add_call(sessions),
        await add_call(sessions),
        await add_call(sessions),
    )
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    with caplog.at_level(logging.ERROR, logger="callcontrol.services.recordings"):
        for call_id, name in ((nowhere, "nowhere.wav"), (empty, "empty.wav"), (junk, "junk.wav")):
            assert await store.ingest(sessions, store_dir, call_id, tmp_path / name, 24000) is None
    assert store.MISSING_RECORDINGS.value == before + 3
    assert f"call {nowhere} should have a recording but its spool file" in caplog.text
    rows = {r.call_id: r for r in await store.missing(sessions)}
    assert set(rows) == {nowhere, empty, junk}
    assert "does not exist" in rows[nowhere].why and "is empty" in rows[empty].why
    assert "not readable audio" in rows[junk].why
    assert await count(sessions, Recording) == 0 and files(store_dir) == []
    # Found again: not counted twice. Then the audio turns up after all: resolved.
    assert await store.ingest(sessions, store_dir, nowhere, tmp_path / "nowhere.wav", 24000) is None
    assert store.MISSING_RECORDINGS.value == before + 3
    make_wav(tmp_path / "nowhere.wav")
    assert await store.ingest(sessions, store_dir, nowhere, tmp_path / "nowhere.wav", 24000)
    assert {r.call_id for r in await store.missing(sessions)} == {empty, junk}
    assert len(await store.missing(sessions, include_resolved=True)) == 3
    with pytest.raises(RecordingError, match="no call"):
        await store.ingest(sessions, store_dir, 999999, tmp_path / "nowhere.wav", 24000)


async def test_privileged_call_is_never_stored(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    call_id = await add_call(sessions, privileged=True)
    wav = make_wav(tmp_path / "legal.wav", seconds=0.5)
    assert await store.ingest(sessions, store_dir, call_id, wav, 24000) is None
    assert not wav.exists() and await count(sessions, Recording) == 0
    assert await store.missing(sessions) == []


async def test_verify_names_an_altered_file_and_an_altered_row(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    r1 = await ingest_new(sessions, store_dir, tmp_path, left=1000)
    r2 = await ingest_new(sessions, store_dir, tmp_path, left=600)
    r3 = await ingest_new(sessions, store_dir, tmp_path, left=800)
    assert await store.verify(sessions, store_dir) == []
    alter_byte(store_dir / r1.file_name)
    with pytest.raises(DBAPIError, match="only marking a recording purged"):
        await execute(sessions, f"UPDATE recordings SET duration_ms = 1 WHERE id = {r2.id}")
    await drop_guards(sessions, "recordings")
    await execute(sessions, f"UPDATE recordings SET duration_ms = 1 WHERE id = {r2.id}")
    (store_dir / r3.file_name).unlink()
    problems = await store.verify(sessions, store_dir)
    assert len(problems) == 3
    altered = f"recording {r1.id} (call {r1.call_id}): file {r1.file_name} altered (its SHA-256 "
    assert [p for p in problems if p.startswith(altered)]
    assert (
        f"recording {r2.id} (call {r2.call_id}): row differs from its chain entry: duration_ms"
        in problems
    )
    assert f"recording {r3.id} (call {r3.call_id}): file {r3.file_name} missing" in problems


async def test_chain_and_audit_log_are_append_only(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    rec = await ingest_new(sessions, store_dir, tmp_path)
    async with sessions.begin() as s:
        await audit.record(s, actor="a", role="admin", action="listen", target="call 1")
    refused = [
        "UPDATE recording_chain SET body = '{}'",
        "DELETE FROM recording_chain",
        "UPDATE audit_log SET actor = 'b'",
        "DELETE FROM audit_log",
        f"DELETE FROM recordings WHERE id = {rec.id}",
        "DELETE FROM recording_chain_head",
        f"UPDATE recordings SET sha256 = 'x', purged_at = '2027-01-01' WHERE id = {rec.id}",
    ]
    async with sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            refused += [
                "TRUNCATE recording_chain",
                "TRUNCATE audit_log",
                "TRUNCATE recordings CASCADE",
            ]
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only|refused"):
            await execute(sessions, statement)
    assert await store.verify(sessions, store_dir) == []
    # Past the triggers, a rewritten chain entry shows, and so does its row's disagreement.
    await drop_guards(sessions, "recording_chain")
    async with sessions.begin() as s:
        rewrite = text("UPDATE recording_chain SET body = replace(body, :was, :now)")
        await s.execute(rewrite, {"was": '"channels":2', "now": '"channels":1'})
    problems = await store.verify(sessions, store_dir)
    assert "entry 1: hash does not match its content" in problems
    assert (
        f"recording {rec.id} (call {rec.call_id}): row differs from its chain entry: channels"
        in problems
    )


async def test_purge_leaves_receipts_and_a_verifiable_chain(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    old = await ingest_new(sessions, store_dir, tmp_path, NOW - timedelta(days=91), left=700)
    new = await ingest_new(sessions, store_dir, tmp_path, NOW - timedelta(days=89), left=900)
    dry = await store.purge(sessions, store_dir, NOW, 90, "tester", dry_run=True)
    assert [(r.recording_id, r.file, r.entry_id) for r in dry] == [(old.id, "deleted", None)]
    assert (store_dir / old.file_name).exists() and await count(sessions, ChainEntry) == 2
    receipts = await store.purge(sessions, store_dir, NOW, 90, "tester")
    assert len(receipts) == 1
    r = receipts[0]
    assert (r.recording_id, r.call_id, r.sha256, r.when, r.why, r.by, r.file) == (
        old.id, old.call_id, old.sha256, NOW, "retention 90 days", "tester", "deleted",
    )  # fmt: skip
    assert not (store_dir / old.file_name).exists() and (store_dir / new.file_name).exists()
    async with sessions() as s:
        row = await s.get(Recording, old.id)
        last = await s.scalar(select(ChainEntry).order_by(ChainEntry.id.desc()).limit(1))
        logged = list((await s.scalars(select(AuditEntry))).all())
    assert row is not None and row.purged_at == NOW and row.sha256 == old.sha256
    assert last is not None and last.kind == "deletion" and last.id == r.entry_id
    assert parse(last.body) == {
        "kind": "deletion", "recording_id": old.id, "call_id": old.call_id,
        "sha256": old.sha256, "when": NOW.isoformat(timespec="microseconds"),
        "why": "retention 90 days", "by": "tester", "file": "deleted",
    }  # fmt: skip
    assert [(a.action, a.actor, a.target, a.reason) for a in logged] == [
        ("purge", "tester", f"recording {old.id}", "retention 90 days")
    ]
    assert await store.verify(sessions, store_dir) == []
    assert await store.purge(sessions, store_dir, NOW, 90, "tester") == []  # nothing more
    with pytest.raises(RecordingError):
        await store.export(sessions, store_dir, old.id, tmp_path / "x.ogg", "tester")
    # A purged recording's file put back (or left by a crash) is reported, and purged again.
    (store_dir / old.file_name).write_bytes(b"left over")
    problems = await store.verify(sessions, store_dir)
    assert len(problems) == 1 and "is still in the store" in problems[0]
    await store.purge(sessions, store_dir, NOW, 90, "tester")
    assert await store.verify(sessions, store_dir) == []


async def test_purge_keeps_audio_another_recording_shares(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    old = await ingest_new(sessions, store_dir, tmp_path, NOW - timedelta(days=100))
    same = await ingest_new(sessions, store_dir, tmp_path, NOW - timedelta(days=1))
    assert old.sha256 == same.sha256  # the same tones: the same bytes
    [receipt] = await store.purge(sessions, store_dir, NOW, 90, "tester")
    assert receipt.file == "shared" and (store_dir / same.file_name).exists()
    assert await store.verify(sessions, store_dir) == []


async def test_export_checks_the_hash_and_is_audited(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    rec = await ingest_new(sessions, store_dir, tmp_path)
    out = tmp_path / "out" / "evidence.ogg"
    out.parent.mkdir()
    exported = await store.export(sessions, store_dir, rec.id, out, "officer1", "court order 7")
    assert exported.id == rec.id and storage.sha256_file(out) == rec.sha256
    async with sessions() as s:
        entries = await audit.list_entries(s)
        assert await audit.list_entries(s, action="purge") == []
    assert [(e.action, e.actor, e.role, e.target, e.reason) for e in entries] == [
        ("export", "officer1", "admin", f"recording {rec.id}", "court order 7")
    ]
    with pytest.raises(RecordingError, match="already exists"):
        await store.export(sessions, store_dir, rec.id, out, "officer1")
    with pytest.raises(RecordingError, match="no recording"):
        await store.export(sessions, store_dir, 99999, tmp_path / "out" / "n.ogg", "officer1")
    alter_byte(store_dir / rec.file_name)
    with pytest.raises(StoreDamaged, match="altered"):
        await store.export(sessions, store_dir, rec.id, tmp_path / "out" / "bad.ogg", "officer1")
    assert files(out.parent) == ["evidence.ogg"]  # nothing else
    assert await count(sessions, AuditEntry) == 1


async def test_audit_record_refuses_bad_fields(sessions: Sessions) -> None:
    async with sessions() as s:
        for bad in (
            {"action": "Export now"}, {"actor": " "}, {"target": "x" * 300}, {"reason": "a\x00b"},
        ):  # fmt: skip
            fields = {"actor": "a", "role": "admin", "action": "cut", "target": "call 1"} | bad
            with pytest.raises(audit.AuditError):
                await audit.record(s, **fields)
    assert await count(sessions, AuditEntry) == 0


async def test_concurrent_ingests_make_one_unbroken_chain(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    calls = [await add_call(sessions) for _ in range(8)]
    wavs = [
        make_wav(tmp_path / "spool" / f"{c}.wav", seconds=1.0, left=300.0 + 100 * i)
        for i, c in enumerate(calls)
    ]
    stored = await asyncio.gather(
        *(store.ingest(sessions, store_dir, c, w, 24000) for c, w in zip(calls, wavs, strict=True))
    )
    assert all(r is not None for r in stored)
    async with sessions() as s:
        entries = list((await s.scalars(select(ChainEntry).order_by(ChainEntry.id))).all())
        head = await s.get(ChainHead, 1)
    assert len(entries) == 8 and head is not None and head.entries == 8
    prev = GENESIS
    for e in entries:  # each follows the one before: one chain, no fork
        assert e.prev_hash == prev
        prev = e.entry_hash
    assert head.entry_hash == prev
    assert await store.verify(sessions, store_dir) == []
    assert files(store_dir) == sorted(r.file_name for r in stored if r is not None)


async def test_concurrent_ingests_of_one_call_store_it_once(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    call_id = await add_call(sessions)
    wavs = [make_wav(tmp_path / "spool" / f"copy{i}.wav", seconds=1.0) for i in range(3)]
    stored = await asyncio.gather(
        *(store.ingest(sessions, store_dir, call_id, w, 24000) for w in wavs)
    )
    assert len({r.id for r in stored if r is not None}) == 1 and None not in stored
    assert await count(sessions, Recording) == 1 and await count(sessions, ChainEntry) == 1
    assert len(files(store_dir)) == 1
    assert await store.verify(sessions, store_dir) == []


async def test_ingest_mixmonitor_raw_stereo(
    sessions: Sessions, store_dir: Path, tmp_path: Path
) -> None:
    """MixMonitor's D option writes raw interleaved stereo (no header) when told `.raw`."""
    with wave.open(str(make_wav(tmp_path / "x.wav", seconds=2.0)), "rb") as w:
        frames = w.readframes(w.getnframes())
    raw = tmp_path / "1700000000.42.raw"
    raw.write_bytes(frames + b"\x01")  # a crash may leave half a sample at the end
    rec = await store.ingest(sessions, store_dir, await add_call(sessions), raw, 24000)
    assert rec is not None and not raw.exists()
    assert (rec.channels, rec.sample_rate) == (2, 8000) and abs(rec.duration_ms - 2000) <= 100


def test_opus_headers_say_what_ffprobe_says(tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "call.wav")
    out = tmp_path / "call.ogg"
    written = audio.compress(wav, out, 24000)
    mine, theirs = audio.ogg_opus_info(out), audio.probe(out)
    assert mine is not None and written == mine
    assert (mine.channels, mine.sample_rate, mine.codec) == (
        theirs.channels,
        theirs.sample_rate,
        "opus",
    )
    assert abs(mine.duration_ms - theirs.duration_ms) <= 20
    assert audio.ogg_opus_info(wav) is None  # not Ogg Opus: the caller falls back to ffprobe
    (tmp_path / "cut.ogg").write_bytes(out.read_bytes()[:40])
    assert audio.ogg_opus_info(tmp_path / "cut.ogg") is None
