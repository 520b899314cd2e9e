"""Searching, playing and downloading recordings (services/recording_access.py), with
hand-written fakes for the store, the files and the audit log."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callcontrol.domain import chain
from callcontrol.services.actors import Actor, AuditNote
from callcontrol.services.errors import Invalid, NotFound, Refused
from callcontrol.services.recording_access import (
    DOWNLOAD,
    PLAY,
    PLAY_IDLE_S,
    TAMPERED,
    Damaged,
    Gone,
    RecordingQuery,
    RecordingService,
    RecordingView,
    StoredRecording,
    parse_query,
)

LONDON = ZoneInfo("Europe/London")
AUDIO = b"OggS" + bytes(range(256)) * 8
OFFICER = Actor("Olive Officer", "officer")
AUDITOR = Actor("Audrey Auditor", "auditor")


def stored(recording_id: int = 1, data: bytes = AUDIO, **changes: object) -> StoredRecording:
    sha = hashlib.sha256(data).hexdigest()
    view = RecordingView(
        recording_id=recording_id, call_id=10 + recording_id, prisoner="A1234BC",
        prisoner_name="Ann", cell="A1-01", number="+442079460000",
        started_at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC), duration_ms=8000, bytes=len(data),
        codec="opus", channels=2, sha256=sha,
    )  # fmt: skip
    body = chain.canonical({"kind": "recording", "sha256": sha, "id": recording_id})
    prev = "0" * 64
    return StoredRecording(
        view=view, file_name=f"{sha}.ogg", event_body=body, prev_entry_hash=prev,
        entry_hash=chain.entry_hash(prev, body), chain_body=body,
    )  # fmt: skip


class FakeStore:
    def __init__(self, *recordings: StoredRecording) -> None:
        self.recordings = {r.view.recording_id: r for r in recordings}
        self.queries: list[RecordingQuery] = []

    async def search(self, query: RecordingQuery) -> Sequence[RecordingView]:
        self.queries.append(query)
        rows = sorted(self.recordings, reverse=True)
        rows = [i for i in rows if query.before is None or i < query.before]
        return [self.recordings[i].view for i in rows[: query.limit]]

    async def stored(self, recording_id: int) -> StoredRecording | None:
        return self.recordings.get(recording_id)


class FakeFiles:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def read(self, file_name: str, longest: int) -> bytes:
        if file_name not in self.files:
            raise FileNotFoundError(file_name)
        if len(self.files[file_name]) > longest:
            raise ValueError("too long")
        return self.files[file_name]


class FakeAudit:
    def __init__(self) -> None:
        self.notes: list[AuditNote] = []
        self.fail = False

    async def record(self, note: AuditNote) -> None:
        if self.fail:
            raise RuntimeError("database down")
        self.notes.append(note)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def world(*recordings: StoredRecording) -> tuple[RecordingService, FakeFiles, FakeAudit, Clock]:
    recordings = recordings or (stored(),)
    files = FakeFiles({r.file_name: AUDIO for r in recordings})
    audit, clock = FakeAudit(), Clock()
    return RecordingService(FakeStore(*recordings), files, audit, clock), files, audit, clock


async def test_a_play_returns_the_checked_bytes_and_is_audited_first() -> None:
    service, _, audit, _ = world()
    got = await service.fetch(OFFICER, 1, PLAY)
    assert got.data == AUDIO and got.audited
    (note,) = audit.notes
    assert (note.actor, note.role, note.action, note.target) == (
        "Olive Officer", "officer", "play", "recording 1",
    )  # fmt: skip
    assert "call 11" in note.detail and got.view.sha256 in note.detail


async def test_no_audit_no_bytes() -> None:
    service, _, audit, _ = world()
    audit.fail = True
    with pytest.raises(RuntimeError):
        await service.fetch(OFFICER, 1, DOWNLOAD)
    with pytest.raises(RuntimeError):
        await service.fetch(OFFICER, 1, PLAY, "play-0001")
    audit.fail = False  # the failed play was not remembered: its next request is audited
    assert (await service.fetch(OFFICER, 1, PLAY, "play-0001")).audited
    assert [n.action for n in audit.notes] == ["play"]


async def test_one_play_is_one_entry_and_every_download_is_one() -> None:
    service, _, audit, clock = world()
    for _ in range(5):  # a player's range requests and seeks
        await service.fetch(OFFICER, 1, PLAY, "page-view-1")
    await service.fetch(OFFICER, 1, PLAY, "page-view-2")  # the page opened again: a new play
    await service.fetch(AUDITOR, 1, PLAY, "page-view-1")  # another person's play id
    await service.fetch(OFFICER, 1, PLAY)  # no play id: every request is a play
    await service.fetch(OFFICER, 1, PLAY)
    clock.now += PLAY_IDLE_S + 1  # long idle: the same id starts a new play
    await service.fetch(OFFICER, 1, PLAY, "page-view-1")
    for _ in range(2):
        await service.fetch(OFFICER, 1, DOWNLOAD, "page-view-1")  # downloads: always
    assert [(n.actor, n.action) for n in audit.notes] == [
        ("Olive Officer", "play"),
        ("Olive Officer", "play"),
        ("Audrey Auditor", "play"),
        ("Olive Officer", "play"),
        ("Olive Officer", "play"),
        ("Olive Officer", "play"),
        ("Olive Officer", "download"),
        ("Olive Officer", "download"),
    ]


@pytest.mark.parametrize("role", ["officer", "admin", "auditor"])
async def test_staff_with_the_right_may_search_and_play(role: str) -> None:
    service, _, _, _ = world()
    actor = Actor("x", role)
    assert len((await service.search(actor, RecordingQuery())).rows) == 1
    assert (await service.fetch(actor, 1, PLAY)).data == AUDIO


@pytest.mark.parametrize("role", ["prisoner", "kiosk", "system", "", "Officer"])
async def test_anyone_else_is_refused(role: str) -> None:
    service, _, audit, _ = world()
    with pytest.raises(Refused):
        await service.search(Actor("x", role), RecordingQuery())
    with pytest.raises(Refused):
        await service.fetch(Actor("x", role), 1, PLAY)
    with pytest.raises(Refused):
        await service.view(Actor("x", role), 1)
    assert audit.notes == []


async def test_unknown_and_purged_recordings() -> None:
    purged = stored(2)
    purged = replace(purged, view=replace(purged.view, purged_at=datetime(2026, 9, 1, tzinfo=UTC)))
    service, _, audit, _ = world(stored(1), purged)
    with pytest.raises(NotFound):
        await service.fetch(OFFICER, 99, PLAY)
    with pytest.raises(Gone, match="purged on 2026-09-01"):
        await service.fetch(OFFICER, 2, DOWNLOAD)
    assert audit.notes == []


@pytest.mark.parametrize(
    ("purpose", "play_id"), [("listen", None), (PLAY, "short"), (PLAY, "a b" * 5)]
)
async def test_bad_requests(purpose: str, play_id: str | None) -> None:
    service, _, _, _ = world()
    with pytest.raises(Invalid):
        await service.fetch(OFFICER, 1, purpose, play_id)


# --- tampering: each refused, nothing served, an alert in the log and the audit -----------------


def altered_file(s: StoredRecording, files: FakeFiles) -> None:
    files.files[s.file_name] = AUDIO[:-1] + b"X"


def truncated_file(s: StoredRecording, files: FakeFiles) -> None:
    files.files[s.file_name] = AUDIO[:100]


def longer_file(s: StoredRecording, files: FakeFiles) -> None:
    files.files[s.file_name] = AUDIO + b"more"


def missing_file(s: StoredRecording, files: FakeFiles) -> None:
    del files.files[s.file_name]


TAMPERINGS = {
    "file altered": (None, altered_file, "was altered"),
    "file truncated": (None, truncated_file, "was altered"),
    "file longer": (None, longer_file, "larger than its row says"),
    "file missing": (None, missing_file, "is missing"),
    # The row's sha256 changed to another recording's (to play it under this row's name): its
    # event no longer hashes to its entry hash.
    "row's hash swapped": (
        lambda s: replace(s, view=replace(s.view, sha256="c" * 64), file_name="c" * 64 + ".ogg",
                          event_body=s.event_body.replace(s.view.sha256, "c" * 64)),
        None, "does not match its own chain hash",
    ),
    # ... and its entry hash recomputed too: the chain does not hold that entry.
    "row and its hash rewritten": (
        lambda s: replace(s, event_body=s.event_body + " ",
                          entry_hash=chain.entry_hash(s.prev_entry_hash, s.event_body + " ")),
        None, "does not match its entry in the recording chain",
    ),
    "chain entry gone": (lambda s: replace(s, chain_body=None), None, "recording chain"),
    "path in the file name": (
        lambda s: replace(s, file_name="../../etc/shadow"), None, "is not its SHA-256",
    ),
    "absurd size": (
        lambda s: replace(s, view=replace(s.view, bytes=2**40)), None, "at most",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", TAMPERINGS)
async def test_a_tampered_recording_is_refused(case: str, caplog: pytest.LogCaptureFixture) -> None:
    change_row, change_file, why = TAMPERINGS[case]
    good = stored()
    bad = change_row(good) if change_row else good
    service, files, audit, _ = world(bad)
    files.files = {good.file_name: AUDIO}
    if change_file:
        change_file(good, files)
    with caplog.at_level(logging.ERROR), pytest.raises(Damaged, match=why) as refused:
        await service.fetch(OFFICER, 1, DOWNLOAD)
    assert "nothing was served" in str(refused.value)
    alert = [r for r in caplog.records if r.getMessage().startswith("RECORDING TAMPERED")]
    assert alert and "Olive Officer" in alert[0].getMessage()
    assert [n.action for n in audit.notes] == [TAMPERED]  # the refusal, not a download


async def test_a_refusal_stands_even_when_its_audit_cannot_be_written() -> None:
    service, files, audit, _ = world()
    altered_file(stored(), files)
    audit.fail = True
    with pytest.raises(Damaged):
        await service.fetch(OFFICER, 1, PLAY)


# --- search -----------------------------------------------------------------------------------


async def test_search_pages_by_recording_id() -> None:
    service, _, _, _ = world(*(stored(i) for i in range(1, 6)))
    first = await service.search(OFFICER, RecordingQuery(limit=2))
    assert [r.recording_id for r in first.rows] == [5, 4] and first.next_before == 4
    second = await service.search(OFFICER, RecordingQuery(limit=2, before=4))
    assert [r.recording_id for r in second.rows] == [3, 2] and second.next_before == 2
    last = await service.search(OFFICER, RecordingQuery(limit=2, before=2))
    assert [r.recording_id for r in last.rows] == [1] and last.next_before is None


def test_parse_query_takes_the_history_filters_and_a_call_id() -> None:
    q = parse_query(
        tz=LONDON, region="GB", prisoner=" a1234bc ", cell="A1-01", number="020 7946 0000",
        since="2026-07-02", until="2026-07-02", call_id="42", limit="5", before="100",
    )  # fmt: skip
    assert q.prisoner == "A1234BC" and q.cell == "A1-01" and q.number == "+442079460000"
    # A local date: London's day (BST), as UTC instants; until includes the whole day.
    assert q.since == datetime(2026, 7, 1, 23, 0, tzinfo=UTC)
    assert q.until == datetime(2026, 7, 2, 23, 0, tzinfo=UTC)
    assert (q.call_id, q.limit, q.before) == (42, 5, 100)
    assert parse_query(tz=LONDON, region="GB") == RecordingQuery()


@pytest.mark.parametrize(
    "given",
    [
        {"since": "yesterday"},
        {"since": "2026-07-02", "until": "2026-07-01"},
        {"number": "not a number"},
        {"call_id": "-1"},
        {"call_id": "0"},
        {"call_id": "1e3"},
        {"call_id": "１２"},
        {"call_id": "9" * 19},
        {"limit": "0"},
        {"limit": "100001"},
        {"before": "x"},
    ],
)
def test_parse_query_refuses_what_it_cannot_understand(given: dict[str, str]) -> None:
    with pytest.raises(Invalid):
        parse_query(tz=LONDON, region="GB", **given)


async def test_check_finds_damage_before_a_player_is_offered_and_audits_no_play() -> None:
    service, files, audit, _ = world()
    assert (await service.check(AUDITOR, 1)).recording_id == 1
    assert audit.notes == []
    altered_file(stored(), files)
    with pytest.raises(Damaged, match="was altered"):
        await service.check(AUDITOR, 1)
    assert [(n.actor, n.action) for n in audit.notes] == [("Audrey Auditor", TAMPERED)]
