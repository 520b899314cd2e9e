"""The live calls page's edges over real HTTP (aiohttp's test server, the supervision fakes):
who may start a listen, the CSRF token, and the WebSocket's checks (same origin, same person,
once). tests/e2e/test_console_live.py shows the same through Chromium against the real lab."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcontrol.adapters.web import mount, staff_file
from callcontrol.adapters.web.base import ConsoleDeps
from callcontrol.adapters.web.sessions import LoginCsrf, LoginThrottle, SessionStore
from callcontrol.adapters.web.staff_file import StaffFile
from callcontrol.services.browser_listen import BrowserListen
from callcontrol.services.live_feed import LiveFeed
from tests.protocol.test_console_base import PASSWORD, Browser
from tests.services.test_supervise import T0, World, call


def acts(world: World) -> list[Any]:
    """The audit notes but the console's own (log in, log out)."""
    return [n for n in world.audit.notes if n.action not in ("login", "logout")]


@pytest.fixture
def world() -> World:
    return World([call(1, answered_at=T0), call(2, answered_at=T0, privileged=True)])


@pytest.fixture
async def site(tmp_path: Path, world: World) -> AsyncIterator[tuple[TestClient[Any, Any], Any]]:
    path = tmp_path / "staff"
    for user, role in (("olive", "officer"), ("oscar", "officer"), ("audrey", "auditor")):
        staff_file.add(path, user, user.title(), role, PASSWORD, "test")
    listening = BrowserListen(world.supervisor, lambda: "127.0.0.1:40000")
    deps = ConsoleDeps(
        staff=StaffFile(path),
        audit=world.audit,
        sessions=SessionStore(1800, 43200),
        throttle=LoginThrottle(3, 10, 900),
        login_csrf=LoginCsrf(),
        supervisor=world.supervisor,
        live_feed=LiveFeed(world.supervisor),
        listening=listening,
    )
    app = web.Application()
    mount(app, deps)
    async with TestClient(TestServer(app)) as client:
        yield client, listening


async def logged_in(client: TestClient[Any, Any], user: str) -> tuple[Browser, str]:
    browser = Browser(client)
    status, _, _ = await browser.login(user)
    assert status == 303
    return browser, await browser.csrf("/console/live")


async def start(browser: Browser, csrf: str, call_id: int = 1) -> tuple[int, Any]:
    status, text, _ = await browser.post(
        f"/console/live/{call_id}/listen", {"csrf_token": csrf, "reason": "r"}
    )
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


async def test_the_page_lists_the_bridged_calls_and_marks_the_privileged_one(site: Any) -> None:
    client, _ = site
    browser, _ = await logged_in(client, "olive")
    status, html, _ = await browser.get("/console/live")
    assert status == 200
    assert 'data-call="1"' in html and 'data-call="2"' in html
    assert "Privileged calls are never listened to" in html


async def test_an_officer_starts_a_listen_and_only_their_page_may_open_it_once(
    site: Any, world: World
) -> None:
    client, listening = site
    olive, csrf = await logged_in(client, "olive")
    status, answer = await start(olive, csrf)
    assert status == 200 and answer["stream"].startswith("/console/live/listen/")
    assert [n.action for n in acts(world)] == ["listen"] and len(world.control.originates) == 1
    ws_path = answer["stream"]
    # Another officer, with the address: refused.
    oscar, _ = await logged_in(client, "oscar")
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_connect(ws_path, headers={**oscar._headers(), "Origin": oscar.origin})
    assert e.value.status == 404
    # Olive's session from another site's page (cross-site WebSocket hijacking): refused.
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_connect(ws_path, headers={**olive._headers(), "Origin": "http://evil"})
    assert e.value.status == 403
    # Olive's own page: connected; then never again.
    ws = await client.ws_connect(ws_path, headers={**olive._headers(), "Origin": olive.origin})
    assert (await ws.receive_json(timeout=5))["state"] == "connecting"
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_connect(ws_path, headers={**olive._headers(), "Origin": olive.origin})
    assert e.value.status == 404
    await ws.close()


async def test_a_listen_without_the_csrf_token_or_from_another_origin_does_nothing(
    site: Any, world: World
) -> None:
    client, _ = site
    olive, csrf = await logged_in(client, "olive")
    status, _, _ = await olive.post("/console/live/1/listen", {"reason": "r"})
    assert status == 403
    status, _, _ = await olive.post(
        "/console/live/1/listen", {"csrf_token": csrf}, origin="http://evil"
    )
    assert status == 403
    assert world.control.originates == [] and acts(world) == []


async def test_an_auditor_can_neither_listen_nor_cut(site: Any, world: World) -> None:
    client, listening = site
    audrey, csrf = await logged_in(client, "audrey")
    status, html, _ = await audrey.get("/console/live")
    assert status == 200 and 'data-may-act="no"' in html
    status, _ = await start(audrey, csrf)
    assert status == 403
    status, _, _ = await audrey.post("/console/live/1/cut", {"csrf_token": csrf, "reason": "x"})
    assert status == 403
    assert world.control.originates == [] and world.control.hangups == []
    assert listening.streams() == []


async def test_a_privileged_call_is_refused_with_the_reason(site: Any, world: World) -> None:
    client, _ = site
    olive, csrf = await logged_in(client, "olive")
    status, answer = await start(olive, csrf, call_id=2)
    assert status == 403 and "privileged" in answer["error"]
    assert [n.action for n in acts(world)] == ["listen_refused"]
    assert world.control.originates == []


async def test_an_officer_cuts_with_a_reason(site: Any, world: World) -> None:
    client, _ = site
    olive, csrf = await logged_in(client, "olive")
    status, _, response = await olive.post(
        "/console/live/1/cut", {"csrf_token": csrf, "reason": "threats"}
    )
    assert status == 303 and response.headers["Location"] == "/console/live"
    assert world.control.hangups == [("PJSIP/A1-01-00000001", 16)]
    [note] = acts(world)
    assert (note.action, note.actor, note.reason) == ("cut", "olive", "threats")
