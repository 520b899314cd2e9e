"""The kiosk's application over HTTP (aiohttp's test server, the service on fakes): only its
own pages exist, every form needs the kiosk's origin and token, cookies are HttpOnly and
SameSite=Strict, every answer carries the strict headers, sessions end when they should."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callcontrol.adapters.kiosk.app import CSP, make_kiosk_app
from callcontrol.adapters.kiosk.sessions import KioskSessions, KioskThrottle
from tests.services.test_kiosk import ANN, ANN_PIN, CAL, World

Client = TestClient[Any, Any]
TOKEN = re.compile(r'name="csrf" value="([^"]*)"')
ESCAPES = [
    "/console/",
    "/console/login",
    "/calls/live",
    "/calls",
    "/alerts",
    "/health",
    "/metrics",
    "/openapi.json",
    "/statement/",
    "/%73tatement",
    "/x/../statement",
    "/static/../templates/base.html",
    "/static/%2e%2e/templates/base.html",
    "/static/..%2fapp.py",
    "//evil.example/",
    "/prisoners/G9012HI",
]


@pytest.fixture
async def kiosk() -> AsyncIterator[tuple[Client, World]]:
    w = World()
    sessions = KioskSessions(120, 900, clock=lambda: w.clock.now.timestamp())
    throttle = KioskThrottle(10, 900, 30, clock=lambda: w.clock.now.timestamp())
    app = make_kiosk_app(w.kiosk, sessions, throttle, ZoneInfo("Europe/London"), login_answer_s=0)
    async with TestClient(TestServer(app)) as client:
        yield client, w


def _origin(client: Client) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


def _session_cookie(response: Any) -> str:
    """The session cookie the answer sets ("" for none, or one deleted)."""
    cookie = response.cookies.get("kiosk_session")
    return cookie.value if cookie is not None else ""


async def _token(client: Client, path: str = "/") -> str:
    page = await (await client.get(path)).text()
    found = TOKEN.search(page)
    assert found, page
    return found.group(1)


async def _sign_in(client: Client, number: str = ANN, pin: str = ANN_PIN) -> Any:
    token = await _token(client)
    return await client.post(
        "/login",
        data={"csrf": token, "number": number, "pin": pin},
        headers=_origin(client),
        allow_redirects=False,
    )


async def test_sign_in_sets_a_strict_cookie_and_shows_the_account(
    kiosk: tuple[Client, World],
) -> None:
    client, _ = kiosk
    response = await _sign_in(client)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.cookies["kiosk_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    home = await (await client.get("/")).text()
    assert 'id="balance">£1.00' in home and "Ann" in home


async def test_every_refusal_looks_the_same(kiosk: tuple[Client, World]) -> None:
    client, w = kiosk
    w.suspend(CAL)
    pages = set()
    for number, pin in [("Z0000ZZ", "1357"), (ANN, "9999"), (CAL, "3579")]:
        response = await _sign_in(client, number, pin)
        assert response.status == 200 and not _session_cookie(response)
        page = await response.text()
        pages.add(TOKEN.sub("", page))
    assert len(pages) == 1  # the same page, but for the form's token


async def _raw(client: Client, method: str, path: str) -> tuple[int, str]:
    """A request with exactly this path on the wire (no client normalising it), with the
    session's cookie."""
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    cookie = "; ".join(f"{k}={v.value}" for k, v in cookies.items())
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
        f"Cookie: {cookie}\r\nOrigin: http://{client.host}:{client.port}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    data = (await reader.read()).decode(errors="replace")
    writer.close()
    head, _, body = data.partition("\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ESCAPES)
async def test_no_other_page_exists(kiosk: tuple[Client, World], path: str) -> None:
    client, _ = kiosk
    await _sign_in(client)
    for method in ("GET", "POST", "PUT", "DELETE"):
        status, text = await _raw(client, method, path)
        assert status == 404, (method, path, text)
        assert "This kiosk has no such page" in text
        assert CAL not in text and "<html" in text
    # The session is the same: the page still knows who is signed in.
    assert 'id="balance"' in await (await client.get("/")).text()


async def test_a_query_names_no_other_prisoner(kiosk: tuple[Client, World]) -> None:
    client, _ = kiosk
    await _sign_in(client)
    for path in ("/statement", "/my-calls", "/contacts", "/"):
        for query in (f"?prisoner={CAL}", f"?prison_number={CAL}&id=3", f"?user={CAL}"):
            status, text = await _raw(client, "GET", path + query)
            assert status == 200 and CAL not in text, (path, query)
    text = (await _raw(client, "GET", f"/statement?prisoner={CAL}"))[1]
    assert f"Ann &middot; {ANN}" in text and "Top-up" in text  # the session's own


async def test_every_answer_has_the_strict_headers(kiosk: tuple[Client, World]) -> None:
    client, _ = kiosk
    for path in ("/", "/static/kiosk.css", "/nothing"):
        response = await client.get(path)
        h = response.headers
        assert h["Content-Security-Policy"] == CSP
        assert "default-src 'none'" in CSP and "form-action 'self'" in CSP
        assert (h["Cache-Control"], h["Referrer-Policy"]) == ("no-store", "same-origin")
        assert h["X-Frame-Options"] == "DENY"


async def test_no_link_or_form_leads_off_the_kiosk(kiosk: tuple[Client, World]) -> None:
    client, _ = kiosk
    await _sign_in(client)
    for path in ("/", "/statement", "/my-calls", "/contacts", "/contacts/new", "/pin", "/x"):
        page = await (await client.get(path)).text()
        for target in re.findall(r'(?:href|action|src|url)=["]?([^"\s>]+)', page):
            assert target.startswith("/") and not target.startswith("//"), (path, target)


async def test_a_form_without_the_origin_or_the_token_is_refused(
    kiosk: tuple[Client, World],
) -> None:
    client, w = kiosk
    token = await _token(client)
    for headers, data in [
        ({}, {"csrf": token, "number": ANN, "pin": ANN_PIN}),
        ({"Origin": "http://evil.example"}, {"csrf": token, "number": ANN, "pin": ANN_PIN}),
        (_origin(client), {"csrf": "forged", "number": ANN, "pin": ANN_PIN}),
    ]:
        response = await client.post("/login", data=data, headers=headers, allow_redirects=False)
        assert response.status == 200 and not _session_cookie(response)
    assert w.pins.failures == []  # refused before any PIN was looked at
    assert (await _sign_in(client)).status == 303
    # Signed in: a change of PIN with a stale token changes nothing.
    response = await client.post(
        "/pin",
        data={"csrf": token, "old": ANN_PIN, "new": "2580", "again": "2580"},
        headers=_origin(client),
    )
    assert response.status == 400 and w.store.changed == []


async def test_a_session_ends_after_two_idle_minutes(kiosk: tuple[Client, World]) -> None:
    client, w = kiosk
    await _sign_in(client)
    w.clock.now += timedelta(seconds=100)
    assert 'id="balance"' in await (await client.get("/")).text()
    w.clock.now += timedelta(seconds=100)  # 100 s since the last request: still on
    assert 'id="balance"' in await (await client.get("/")).text()
    w.clock.now += timedelta(seconds=121)
    page = await (await client.get("/")).text()
    assert 'id="balance"' not in page and 'id="login"' in page


async def test_sign_out_ends_the_session(kiosk: tuple[Client, World]) -> None:
    client, _ = kiosk
    await _sign_in(client)
    token = await _token(client, "/")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["kiosk_session"].value
    response = await client.post("/logout", data={"csrf": token}, headers=_origin(client))
    assert 'id="login"' in await response.text()
    # The old cookie, replayed, is worth nothing.
    client.session.cookie_jar.update_cookies({"kiosk_session": cookie})
    assert 'id="balance"' not in await (await client.get("/")).text()


async def test_a_pin_change_ends_the_session(kiosk: tuple[Client, World]) -> None:
    client, w = kiosk
    await _sign_in(client)
    token = await _token(client, "/pin")
    response = await client.post(
        "/pin",
        data={"csrf": token, "old": ANN_PIN, "new": "2580", "again": "2580"},
        headers=_origin(client),
    )
    assert "Your PIN is changed" in await response.text()
    assert 'id="balance"' not in await (await client.get("/")).text()
    assert (await _sign_in(client, ANN, "2580")).status == 303


async def test_a_kiosk_that_keeps_failing_is_paused_for_every_number(
    kiosk: tuple[Client, World],
) -> None:
    """One kiosk cannot spend every cell's budget a few tries each: ten refusals there in 15
    minutes, and it answers every sign-in alike without looking at any PIN, until they age."""
    client, w = kiosk
    for n in range(10):  # ten different prisoners' numbers: no cell comes near its lockout
        assert not _session_cookie(await _sign_in(client, f"Z{n:04d}ZZ", "1470"))
    looked_up = w.pins.calls.count("account")
    response = await _sign_in(client)  # Ann's right PIN: refused unseen
    assert response.status == 200 and not _session_cookie(response)
    assert w.pins.calls.count("account") == looked_up
    assert "A1-01" not in {lockout.cell for lockout in w.pins.lockouts}
    w.clock.now += timedelta(seconds=901)
    assert (await _sign_in(client)).status == 303
    client.session.cookie_jar.clear()  # Ann leaves; the day's cap: 30 refusals, however slowly
    for n in range(20):
        w.clock.now += timedelta(seconds=100)
        await _sign_in(client, f"Y{n:04d}YY", "1470")
    w.clock.now += timedelta(seconds=901)
    response = await _sign_in(client)
    assert response.status == 200 and not _session_cookie(response)
