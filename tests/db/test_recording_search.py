"""Recordings for staff on real databases (SQLite and PostgreSQL) with real stored audio: each
search filter, and GET /recordings and GET /recordings/{id}/audio (tokens, ranges, downloads,
the audit log, and files or rows tampered with)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.recording_store import SqlRecordingStore
from callcontrol.adapters.db.supervise_store import SqlAuditLog
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenEntry, TokenFile, digest
from callcontrol.adapters.http.recordings import RecordingsApi
from callcontrol.adapters.storage import StoreFiles
from callcontrol.services import recordings as store
from callcontrol.services.actors import Actor
from callcontrol.services.recording_access import RecordingService, parse_query
from tests.db.test_recordings import make_wav
from tests.protocol.openapi_check import Described
from tests.services.test_supervise import World

Sessions = async_sessionmaker[AsyncSession]
LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
OFFICER_TOKEN = "officer-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdefgh"
_serial = itertools.count(1)


@dataclass
class Site:
    sessions: Sessions
    store_dir: Path
    ids: dict[str, int]  # recording ids by name
    calls: dict[str, int]  # call ids by name

    def service(self) -> RecordingService:
        return RecordingService(
            SqlRecordingStore(self.sessions), StoreFiles(self.store_dir), SqlAuditLog(self.sessions)
        )

    async def audit(self, action: str) -> list[m.AuditEntry]:
        async with self.sessions() as s:
            query = select(m.AuditEntry).where(m.AuditEntry.action == action)
            return list((await s.scalars(query.order_by(m.AuditEntry.id))).all())


async def _call(
    s: AsyncSession, cell: m.Cell, prisoner: m.Prisoner, number: str, at: datetime
) -> int:
    decision = m.CallDecision(
        handset=cell.name, dialled=number, number=number, outcome="allow",
        reason="approved_contact", cell_id=cell.id, prisoner_id=prisoner.id,
    )  # fmt: skip
    s.add(decision)
    await s.flush()
    call = m.Call(
        decision_id=decision.id, prisoner_id=prisoner.id, cell_id=cell.id, number=number,
        channel=f"PJSIP/{cell.name}", uniqueid=f"u{next(_serial)}", started_at=at,
        answered_at=at + timedelta(seconds=5), ended_at=at + timedelta(seconds=9),
    )  # fmt: skip
    s.add(call)
    await s.flush()
    return call.id


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    """Four recordings: Ann (A1-01) calls London twice and a mobile once; Bob (B2-02) London."""
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    calls: dict[str, int] = {}
    async with sessions.begin() as s:
        a, b = (m.Cell(name=n, sip_username=n, sip_md5_cred="0" * 32) for n in ("A1-01", "B2-02"))
        s.add_all([a, b])
        await s.flush()
        ann = m.Prisoner(prison_number="A1234BC", name="Ann", pin_hash="h1$0", cell_id=a.id)
        bob = m.Prisoner(prison_number="B5678CD", name="Bob", pin_hash="h1$0", cell_id=b.id)
        s.add_all([ann, bob])
        await s.flush()
        calls["ann_first"] = await _call(s, a, ann, "+442079460000", T0)
        # 23:30 UTC on 1 July is 2 July in London: a date filter is local.
        calls["ann_late"] = await _call(
            s, a, ann, "+442079460000", T0 + timedelta(hours=14, minutes=25)
        )
        calls["ann_mobile"] = await _call(s, a, ann, "+447911123456", T0 + timedelta(days=2))
        calls["bob"] = await _call(s, b, bob, "+442079460000", T0 + timedelta(days=3))
    store_dir, ids = tmp_path / "store", {}
    for i, (name, call_id) in enumerate(calls.items()):
        wav = make_wav(tmp_path / "spool" / f"{call_id}.wav", seconds=2.0 + i, left=900.0 + 10 * i)
        rec = await store.ingest(sessions, store_dir, call_id, wav, 24000)
        assert rec is not None
        ids[name] = rec.id
    yield Site(sessions, store_dir, ids, calls)
    await engine.dispose()


async def found(site: Site, **given: Any) -> list[int]:
    query = parse_query(tz=LONDON, region="GB", **given)
    page = await site.service().search(Actor("x", "auditor"), query)
    return [r.recording_id for r in page.rows]


async def test_each_search_filter(site: Site) -> None:
    ids = site.ids
    everything = [ids["bob"], ids["ann_mobile"], ids["ann_late"], ids["ann_first"]]
    assert await found(site) == everything
    assert await found(site, prisoner="a1234bc") == everything[1:]
    assert await found(site, cell="B2-02") == [ids["bob"]]
    assert await found(site, number="07911 123456") == [ids["ann_mobile"]]
    assert await found(site, number="020 7946 0000") == [
        ids["bob"],
        ids["ann_late"],
        ids["ann_first"],
    ]
    assert await found(site, since="2026-07-02", until="2026-07-02") == [ids["ann_late"]]
    assert await found(site, since="2026-07-03") == [ids["bob"], ids["ann_mobile"]]
    assert await found(site, until="2026-07-01") == [ids["ann_first"]]
    assert await found(site, call_id=str(site.calls["ann_mobile"])) == [ids["ann_mobile"]]
    assert await found(site, prisoner="A1234BC", cell="B2-02") == []
    assert await found(site, prisoner="Z9999ZZ") == []
    assert await found(site, limit="2", before=str(ids["ann_mobile"])) == everything[2:]


async def test_a_view_shows_who_where_and_how_long(site: Site) -> None:
    page = await site.service().search(
        Actor("x", "officer"), parse_query(tz=LONDON, region="GB", cell="B2-02")
    )
    (v,) = page.rows
    assert (v.prisoner, v.prisoner_name, v.cell, v.number) == (
        "B5678CD",
        "Bob",
        "B2-02",
        "+442079460000",
    )
    assert v.started_at == T0 + timedelta(days=3, seconds=5)  # when the call was answered
    assert abs(v.duration_ms - 5000) <= 100 and v.codec == "opus" and v.channels == 2
    assert (site.store_dir / f"{v.sha256}.ogg").stat().st_size == v.bytes


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
async def client(site: Site, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    tokens = tmp_path / "api-tokens"
    tokens.write_text(
        TokenEntry("a11ce000", "Alice Officer", "officer", digest(OFFICER_TOKEN)).to_json()
        + "\n"
        + TokenEntry("ad000000", "Adam Admin", "admin", digest(ADMIN_TOKEN)).to_json()
    )
    tokens.chmod(0o600)
    api = RecordingsApi(site.service(), LONDON, "GB")
    app = make_app(World([]).supervisor, TokenFile(tokens), recordings=api)
    async with TestClient(TestServer(app)) as c:
        yield c


OFFICER = {"Authorization": f"Bearer {OFFICER_TOKEN}"}


async def test_without_a_valid_token_nothing_is_listed_or_served(
    site: Site, client: TestClient[Any, Any]
) -> None:
    audio = f"/recordings/{site.ids['bob']}/audio"
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {OFFICER_TOKEN}"},
        {"Authorization": OFFICER_TOKEN},
    ):
        for path in ("/recordings", audio, audio + "?download=1"):
            got = await client.get(path, headers=headers)
            assert got.status == 401, (path, headers)
            assert got.headers["WWW-Authenticate"].startswith("Bearer")
            assert got.content_type == "application/json" and (await got.json())["error"]
    assert await site.audit("play") == [] and await site.audit("download") == []


SEARCH, AUDIO = "/recordings", "/recordings/{recording_id}/audio"


async def test_search_over_http(site: Site, client: TestClient[Any, Any]) -> None:
    described = Described()
    got = await client.get(
        "/recordings", params={"prisoner": "A1234BC", "limit": "2"}, headers=OFFICER
    )
    assert got.status == 200, await got.text()
    data = await described.check(got, "GET", SEARCH)
    assert [r["recording_id"] for r in data["recordings"]] == [
        site.ids["ann_mobile"],
        site.ids["ann_late"],
    ]
    assert data["next_before"] == site.ids["ann_late"]
    first = data["recordings"][0]
    assert first["prisoner"] == {"prison_number": "A1234BC", "name": "Ann"}
    assert first["audio"] == f"/recordings/{site.ids['ann_mobile']}/audio"
    assert first["call_id"] == site.calls["ann_mobile"] and first["cell"] == "A1-01"
    for bad in (
        {"since": "soon"},
        {"call_id": "x"},
        {"colour": "red"},
        {"number": "call me"},
        {"prisoner": "A1 234"},
        {"cell": "../x"},
    ):
        got = await client.get("/recordings", params=bad, headers=OFFICER)
        assert got.status == 400, bad
        assert (await described.check(got, "GET", SEARCH))["error"]


async def test_play_by_ranges_and_download_each_audited_under_the_person(
    site: Site, client: TestClient[Any, Any]
) -> None:
    rec_id = site.ids["ann_first"]
    async with site.sessions() as s:
        rec = await s.get(m.Recording, rec_id)
    assert rec is not None
    stored = (site.store_dir / rec.file_name).read_bytes()
    path = f"/recordings/{rec_id}/audio"
    got = await client.get(
        path, params={"play": "page-0001"}, headers=OFFICER | {"Range": "bytes=0-"}
    )
    described = Described()
    assert got.status == 206 and await described.check(got, "GET", AUDIO) == stored
    assert got.headers["Content-Range"] == f"bytes 0-{len(stored) - 1}/{len(stored)}"
    assert "Content-Disposition" not in got.headers
    got = await client.get(
        path, params={"play": "page-0001"}, headers=OFFICER | {"Range": "bytes=-100"}
    )
    assert got.status == 206 and await got.read() == stored[-100:]  # a seek of the same play
    got = await client.get(
        path, params={"download": "1"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert got.status == 200 and await described.check(got, "GET", AUDIO) == stored
    assert got.headers["Content-Disposition"] == (
        f'attachment; filename="recording-{rec_id}-call-{rec.call_id}.ogg"'
    )
    (play,) = await site.audit("play")
    (download,) = await site.audit("download")
    assert (play.actor, play.role, play.target) == (
        "Alice Officer",
        "officer",
        f"recording {rec_id}",
    )
    assert (download.actor, download.role) == ("Adam Admin", "admin")
    assert rec.sha256 in download.detail and f"call {rec.call_id}" in download.detail
    got = await client.get(path, headers=OFFICER | {"Range": f"bytes={len(stored)}-"})
    assert got.status == 416 and got.headers["Content-Range"] == f"bytes */{len(stored)}"
    got = await client.get("/recordings/999999/audio", headers=OFFICER)
    assert got.status == 404 and (await described.check(got, "GET", AUDIO))["error"]
    assert (await client.head(path, headers=OFFICER)).status == 405  # every request audited


async def test_a_tampered_file_is_refused_with_an_alert(
    site: Site, client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    rec_id = site.ids["bob"]
    async with site.sessions() as s:
        rec = await s.get(m.Recording, rec_id)
    assert rec is not None
    path = site.store_dir / rec.file_name
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the audio
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        got = await client.get(
            f"/recordings/{rec_id}/audio", params={"download": "1"}, headers=OFFICER
        )
    assert got.status == 500
    assert got.content_type == "application/json"  # never the audio
    message = (await Described().check(got, "GET", AUDIO))["error"]
    assert (
        f"recording {rec_id}" in message
        and "altered" in message
        and "nothing was served" in message
    )
    assert any(r.getMessage().startswith("RECORDING TAMPERED") for r in caplog.records)
    assert await site.audit("download") == []
    (refusal,) = await site.audit("recording_tampered")
    assert refusal.actor == "Alice Officer" and refusal.target == f"recording {rec_id}"


async def test_a_row_rewritten_in_the_database_is_refused(
    site: Site, client: TestClient[Any, Any], db_url: str
) -> None:
    """Whoever owns the database drops the trigger that keeps recordings as written, and makes
    Bob's recording row name Ann's audio: the row no longer matches its chain entry."""
    async with site.sessions() as s:
        bob = await s.get(m.Recording, site.ids["bob"])
        ann = await s.get(m.Recording, site.ids["ann_first"])
    assert bob is not None and ann is not None
    drop = (
        "DROP TRIGGER recordings_only_purge ON recordings"
        if db_url.startswith("postgresql")
        else "DROP TRIGGER recordings_no_update"
    )
    async with site.sessions.begin() as s:
        await s.execute(text(drop))
        await s.execute(
            text("UPDATE recordings SET sha256 = :sha, file_name = :f, bytes = :b WHERE id = :id"),
            {"sha": ann.sha256, "f": ann.file_name, "b": ann.bytes, "id": bob.id},
        )
    got = await client.get(f"/recordings/{bob.id}/audio", headers=OFFICER)
    assert got.status == 500
    assert "chain" in (await got.json())["error"]
    assert await site.audit("play") == []


async def seed_recording(sessions: Sessions, store_dir: Path, spool: Path, call_id: int) -> int:
    """A recording of ``call_id`` (real Ogg Opus in ``store_dir``); its id."""
    wav = make_wav(spool / f"seed-{call_id}.wav", seconds=1.0)
    rec = await store.ingest(sessions, store_dir, call_id, wav, 24000)
    assert rec is not None
    return rec.id
