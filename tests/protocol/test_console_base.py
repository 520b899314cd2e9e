"""The console's foundation over real HTTP (aiohttp's test server): login, sessions, CSRF,
the throttle, security headers, and the ends of a session. The browser tests
(tests/e2e/test_console_*.py) show the same through Chromium against the real daemon."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcontrol.adapters.web import mount, staff_file
from callcontrol.adapters.web.base import ConsoleDeps
from callcontrol.adapters.web.sessions import LoginCsrf, LoginThrottle, SessionStore
from callcontrol.adapters.web.staff_file import StaffFile
from callcontrol.services.supervise import AuditNote

PASSWORD = "correct horse battery"


class Audit:
    """The audit log port, kept in a list (the SQL one is tested in tests/db)."""

    def __init__(self) -> None:
        self.notes: list[AuditNote] = []

    async def record(self, note: AuditNote) -> None:
        self.notes.append(note)

    async def entries(self, *, limit: int, action: str | None) -> list[Any]:
        return []


class Browser:
    """A client that keeps cookies as a browser on a trustworthy origin does (Secure ones
    too) and sends our Origin with every POST, unless told otherwise."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.origin = str(client.make_url("/")).rstrip("/")

    def _keep(self, response: Any) -> None:
        for name, morsel in response.cookies.items():
            if morsel.value == "" or morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    async def get(self, path: str) -> tuple[int, str, Any]:
        async with self.client.get(path, headers=self._headers(), allow_redirects=False) as r:
            self._keep(r)
            return r.status, await r.text(), r

    async def post(
        self, path: str, data: dict[str, str], origin: str | None = "ours"
    ) -> tuple[int, str, Any]:
        headers = self._headers()
        if origin == "ours":
            headers["Origin"] = self.origin
        elif origin is not None:
            headers["Origin"] = origin
        async with self.client.post(path, data=data, headers=headers, allow_redirects=False) as r:
            self._keep(r)
            return r.status, await r.text(), r

    async def csrf(self, path: str) -> str:
        status, html, _ = await self.get(path)
        assert status == 200, html
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, html
        return found.group(1)

    async def login(self, username: str, password: str = PASSWORD) -> tuple[int, str, Any]:
        token = await self.csrf("/console/login")
        data = {"csrf_token": token, "username": username, "password": password}
        return await self.post("/console/login", data)


@pytest.fixture
def staff(tmp_path: Path) -> Path:
    path = tmp_path / "staff"
    staff_file.add(path, "olive", "Olive Officer", "officer", PASSWORD, "test")
    staff_file.add(path, "adam", "Adam Admin", "admin", PASSWORD, "test")
    return path


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def public_origin() -> str:
    return ""


@pytest.fixture
def deps(staff: Path, audit: Audit, public_origin: str) -> ConsoleDeps:
    return ConsoleDeps(
        staff=StaffFile(staff),
        audit=audit,
        sessions=SessionStore(1800, 43200),
        throttle=LoginThrottle(3, 10, 900),
        login_csrf=LoginCsrf(),
        public_origin=public_origin,
    )


@pytest.fixture
async def browser(deps: ConsoleDeps) -> AsyncIterator[Browser]:
    app = web.Application()
    mount(app, deps)
    async with TestClient(TestServer(app)) as client:
        yield Browser(client)


async def test_without_a_session_every_page_sends_to_login(browser: Browser) -> None:
    status, _, r = await browser.get("/console/")
    assert status == 303 and r.headers["Location"] == "/console/login"


async def test_login_then_home_then_logout(browser: Browser, audit: Audit) -> None:
    pre = dict(browser.cookies)
    status, _, r = await browser.login("olive")
    assert status == 303, _
    cookie = r.cookies["cc_console"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/console/"
    assert browser.cookies["cc_console"] not in pre.values()
    status, html, r = await browser.get("/console/")
    assert status == 200 and "Olive Officer" in html
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    status, _, _ = await browser.post("/console/logout", {"csrf_token": token})
    assert status == 303
    assert (await browser.get("/console/"))[0] == 303
    assert [(n.actor, n.action) for n in audit.notes] == [("olive", "login"), ("olive", "logout")]


async def test_one_answer_for_unknown_user_wrong_password_and_disabled(
    browser: Browser, staff: Path, audit: Audit
) -> None:
    staff_file.set_disabled(staff, "adam", True, "test")
    answers = []
    for username, password in (
        ("nobody", PASSWORD),
        ("olive", "wrong password!"),
        ("adam", PASSWORD),
    ):
        status, html, _ = await browser.login(username, password)
        answers.append((status, re.search(r'id="login-error"[^>]*>([^<]*)<', html).group(1)))  # type: ignore[union-attr]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401
    assert "cc_console" not in browser.cookies
    assert [(n.actor, n.action) for n in audit.notes] == [
        ("(unknown user)", "login_failed"),
        ("olive", "login_failed"),
        ("adam", "login_failed"),
    ]
    assert "disabled" in audit.notes[2].detail and "wrong password" in audit.notes[1].detail


async def test_login_throttled_per_username_even_with_the_right_password(
    browser: Browser,
) -> None:
    for _ in range(3):
        assert (await browser.login("olive", "wrong password!"))[0] == 401
    status, html, _ = await browser.login("olive")
    assert status == 429 and "Too many failed logins" in html
    assert "cc_console" not in browser.cookies
    # Another person from the same address is not locked out by olive's failures (yet).
    assert (await browser.login("adam"))[0] == 303


async def test_login_refused_from_another_origin_or_without_token(browser: Browser) -> None:
    token = await browser.csrf("/console/login")
    data = {"csrf_token": token, "username": "olive", "password": PASSWORD}
    for origin in ("http://evil.example", None, "null"):
        status, html, _ = await browser.post("/console/login", data, origin=origin)
        assert status == 403, (origin, html)
    status, _, _ = await browser.post("/console/login", data | {"csrf_token": "x" * 64})
    assert status == 403
    assert "cc_console" not in browser.cookies


async def test_logout_refused_without_csrf_token_or_from_another_origin(browser: Browser) -> None:
    await browser.login("olive")
    token = await browser.csrf("/console/")
    assert (await browser.post("/console/logout", {}))[0] == 403
    assert (await browser.post("/console/logout", {"csrf_token": token}, "http://x.test"))[0] == 403
    assert (await browser.get("/console/"))[0] == 200  # still logged in: nothing was done


@pytest.mark.parametrize("change", ["disable", "passwd", "role"])
async def test_a_change_to_the_account_ends_its_sessions(
    browser: Browser, staff: Path, change: str
) -> None:
    await browser.login("olive")
    assert (await browser.get("/console/"))[0] == 200
    if change == "disable":
        staff_file.set_disabled(staff, "olive", True, "test")
    elif change == "passwd":
        staff_file.set_password(staff, "olive", "another good password", "test")
    else:
        staff_file.set_role(staff, "olive", "admin", "test")
    assert (await browser.get("/console/"))[0] == 303


async def test_unknown_page_is_an_html_404_with_headers(browser: Browser) -> None:
    await browser.login("olive")
    status, html, r = await browser.get("/console/no-such-page")
    assert status == 404 and "There is no such page" in html
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["X-Frame-Options"] == "DENY"


def test_session_ends_when_idle_and_after_its_absolute_limit() -> None:
    now = [0.0]
    store = SessionStore(idle_s=100, absolute_s=250, clock=lambda: now[0])
    s = store.start("olive", "Olive", "officer", "stamp")
    for t in (90, 180, 240):
        now[0] = t
        assert store.get(s.sid) is s
    now[0] = 251
    assert store.get(s.sid) is None
    s = store.start("olive", "Olive", "officer", "stamp")
    now[0] += 101
    assert store.get(s.sid) is None


@pytest.mark.parametrize(
    ("username", "shown", "hidden"),
    [("olive", ["Cells", "Call history", "Alerts"], ["Audit log"]), ("adam", ["Audit log"], [])],
)
async def test_the_menu_follows_the_role(
    browser: Browser, username: str, shown: list[str], hidden: list[str]
) -> None:
    await browser.login(username)
    _, html, _ = await browser.get("/console/")
    menu = re.search(r'<nav class="menu".*?</nav>', html, re.S)
    assert menu, html
    for label in shown:
        assert f">{label}</a>" in menu.group(0)
    for label in hidden:
        assert f">{label}</a>" not in menu.group(0)
    status, html, _ = await browser.get("/console/audit")
    assert (status == 403) == ("Audit log" in hidden)


@pytest.mark.parametrize("public_origin", ["https://console.prison.example"])
async def test_behind_a_proxy_forms_come_only_from_the_public_origin(
    browser: Browser, public_origin: str
) -> None:
    token = await browser.csrf("/console/login")
    data = {"csrf_token": token, "username": "olive", "password": PASSWORD}
    assert (await browser.post("/console/login", data))[0] == 403  # the daemon's own address
    assert (await browser.post("/console/login", data, origin=public_origin))[0] == 303


async def test_the_per_address_limit_covers_every_username(browser: Browser) -> None:
    for i in range(10):  # per_address in the fixture
        assert (await browser.login(f"guess{i}", "wrong password!"))[0] == 401
    assert (await browser.login("adam"))[0] == 429


class Recordings:
    """pages/alerts.py's RecordingAlerts port with one missing recording and one failure (the
    SQL one reads services/recordings.py's missing(), tested in tests/db)."""

    async def missing(self) -> list[Any]:
        from datetime import UTC, datetime
        from types import SimpleNamespace

        return [SimpleNamespace(call_id=41, detected_at=datetime.now(UTC), why="empty file")]

    def failures_since_start(self) -> int:
        return 2

    def stuck_spool_files(self) -> list[Any]:
        return []


async def test_alerts_show_missing_recordings_and_failed_ingests(
    browser: Browser, deps: ConsoleDeps
) -> None:
    deps.recording_alerts = Recordings()
    await browser.login("olive")
    status, html, _ = await browser.get("/console/alerts")
    assert status == 200, html
    assert 'data-call="41"' in html and "empty file" in html
    assert "2 ingest(s) failed" in html
    assert "No PIN lockout" in html


async def test_a_login_form_posted_while_logged_in_keeps_the_session(browser: Browser) -> None:
    await browser.login("olive")
    data = {"csrf_token": "stale", "username": "adam", "password": PASSWORD}
    status, html, _ = await browser.post("/console/login", data)  # an old tab's form
    assert status == 400 and "Your browser did not keep" in html
    status, html, _ = await browser.get("/console/")
    assert status == 200 and "Olive Officer" in html
