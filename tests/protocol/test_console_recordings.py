"""The console's recordings pages over real HTTP (aiohttp's test server), with the recording
service on fakes: who may see them, the search form's errors, the player's address (one play id
per page shown), ranges, and a damaged recording. tests/e2e/test_console_recordings.py does the
same in Chromium against the real daemon and a recorded call."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcontrol.adapters.http.recordings import RecordingsApi
from callcontrol.adapters.web import mount
from callcontrol.adapters.web.base import ConsoleDeps
from callcontrol.adapters.web.sessions import LoginCsrf, LoginThrottle, SessionStore
from callcontrol.adapters.web.staff_file import StaffFile
from callcontrol.services.recording_access import RecordingService
from tests.protocol.test_console_base import Audit, Browser, audit, staff  # noqa: F401
from tests.services.test_recording_access import AUDIO, FakeAudit, FakeFiles, FakeStore, stored

EVIL = "<script>alert(1)</script>"


@pytest.fixture
def files() -> FakeFiles:
    return FakeFiles({})


@pytest.fixture
def service_audit() -> FakeAudit:
    return FakeAudit()


@pytest.fixture
async def browser(
    staff: Path,  # noqa: F811 (the fixture imported above)
    audit: Audit,  # noqa: F811
    files: FakeFiles,
    service_audit: FakeAudit,
) -> AsyncIterator[Browser]:
    one, two = stored(1), stored(2)
    two = replace(two, view=replace(two.view, prisoner_name=EVIL))
    files.files.update({one.file_name: AUDIO, two.file_name: AUDIO})
    service = RecordingService(FakeStore(one, two), files, service_audit)
    deps = ConsoleDeps(
        staff=StaffFile(staff),
        audit=audit,
        sessions=SessionStore(1800, 43200),
        throttle=LoginThrottle(3, 10, 900),
        login_csrf=LoginCsrf(),
        recordings=RecordingsApi(service, ZoneInfo("Europe/London"), "GB"),
    )
    app = web.Application()
    mount(app, deps)
    async with TestClient(TestServer(app)) as client:
        yield Browser(client)


async def test_without_a_session_nothing_is_shown_or_served(
    browser: Browser, service_audit: FakeAudit
) -> None:
    for path in (
        "/console/recordings",
        "/console/recordings/1",
        "/console/recordings/1/audio",
        "/console/recordings/1/audio?download=1",
    ):
        status, body, r = await browser.get(path)
        assert status == 303 and r.headers["Location"] == "/console/login", path
        assert "OggS" not in body
    assert service_audit.notes == []


async def test_search_lists_and_escapes(browser: Browser) -> None:
    assert (await browser.login("olive"))[0] == 303
    status, html, _ = await browser.get("/console/recordings?prisoner=A1234BC")
    assert status == 200
    assert 'id="recording-1"' in html and 'id="recording-2"' in html
    assert EVIL not in html and "&lt;script&gt;" in html
    status, html, _ = await browser.get("/console/recordings?since=someday")
    assert status == 200 and 'id="search-error"' in html and "someday" in html


async def test_each_page_view_gets_its_own_play_and_the_audio_seeks(
    browser: Browser, service_audit: FakeAudit
) -> None:
    await browser.login("olive")
    ids = []
    for _ in range(2):
        status, html, _ = await browser.get("/console/recordings/1")
        assert status == 200
        found = re.search(r'src="(/console/recordings/1/audio\?play=[A-Za-z0-9_-]+)"', html)
        assert found, html
        ids.append(found.group(1))
    assert ids[0] != ids[1]
    assert service_audit.notes == []  # a page shown is not a play
    headers = browser._headers() | {"Range": "bytes=4-9"}
    for _ in range(3):  # one play's requests
        async with browser.client.get(ids[0], headers=headers) as r:
            assert r.status == 206 and await r.read() == AUDIO[4:10]
            assert r.headers["Content-Type"] == "audio/ogg"
    async with browser.client.get(ids[1], headers=browser._headers()) as r:
        assert r.status == 200 and await r.read() == AUDIO
    async with browser.client.get(
        "/console/recordings/1/audio?download=1", headers=browser._headers()
    ) as r:
        assert r.status == 200 and r.headers["Content-Disposition"].startswith("attachment;")
    assert [(n.actor, n.action) for n in service_audit.notes] == [
        ("olive", "play"),
        ("olive", "play"),
        ("olive", "download"),
    ]


async def test_a_damaged_recording_gets_no_player_and_no_bytes(
    browser: Browser, files: FakeFiles, service_audit: FakeAudit
) -> None:
    await browser.login("adam")
    for name in files.files:
        files.files[name] = AUDIO[:-1] + b"!"
    status, html, _ = await browser.get("/console/recordings/1")
    assert status == 409 and 'id="refused"' in html and "<audio" not in html
    status, html, _ = await browser.get("/console/recordings/1/audio?download=1")
    assert status == 409 and "altered" in html and "OggS" not in html
    assert {n.action for n in service_audit.notes} == {"recording_tampered"}
    status, _, _ = await browser.get("/console/recordings/99")
    assert status == 404
