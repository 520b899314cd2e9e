"""The supervision API over HTTP: aiohttp's test client against the application, over the
service's fakes (and once over the real SQL store); the CLI against a served application."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.db.tables import Reservation
from callcontrol.adapters.http import HttpServer, HttpServerError
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import (
    Principal,
    TokenEntry,
    TokenError,
    TokenFile,
    bearer_token,
    digest,
    parse_tokens,
)
from callcontrol.adapters.http.token_store import add_token, list_tokens, revoke_token
from callcontrol.cli import main
from callcontrol.config import ConfigError
from callcontrol.operator_services import session_services
from callcontrol.services.supervise import AsteriskActionLost, Supervisor
from tests.conftest import TEST_PIN_SECRET, TESTER
from tests.services.test_supervise import T0, FakeControl, World, call

OFFICER_TOKEN = "officer-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
OFFICER = {"Authorization": f"Bearer {OFFICER_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "var" / "api-tokens"
    path.parent.mkdir()
    path.write_text(
        "# hashes only\n"
        + entry("a11ce000", "alice", "officer", OFFICER_TOKEN)
        + "\n"
        + entry("2007f000", "root", "admin", ADMIN_TOKEN)
    )
    path.chmod(0o600)
    return path


def entry(token_id: str, person: str, role: str, token: str, **more: str) -> str:
    """A line of the tokens file, as `callcontrol token add` writes it."""
    return TokenEntry(token_id, person, role, digest(token), **more).to_json() + "\n"


@pytest.fixture
def world() -> World:
    return World(
        [
            call(1, answered_at=T0 + timedelta(seconds=60)),
            call(2, cell="B2-07", prisoner="B5678CD", privileged=True),
            call(3, cell="C3-01", prisoner="C9999ZZ", ended_at=T0),
        ]
    )


@pytest.fixture
async def client(world: World, tokens_file: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(world.supervisor, TokenFile(tokens_file))
    async with TestClient(TestServer(app)) as client:
        yield client


async def answer(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


# --- authentication ----------------------------------------------------------------------------


async def test_health_needs_no_token(client: TestClient[Any, Any], world: World) -> None:
    assert await answer(await client.get("/health"), 200) == {"ami": True, "db": True}
    world.control.connected, world.store.db_up = False, False
    assert await answer(await client.get("/health"), 503) == {"ami": False, "db": False}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": OFFICER_TOKEN}],
)
async def test_401_without_a_valid_token(
    client: TestClient[Any, Any], world: World, headers: dict[str, str]
) -> None:
    response = await client.post("/calls/1/cut", json={"reason": "r"}, headers=headers)
    assert (await answer(response, 401))["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert world.control.hangups == []


async def test_403_for_the_wrong_role(client: TestClient[Any, Any]) -> None:
    data = await answer(await client.get("/audit", headers=OFFICER), 403)
    assert "admin" in data["error"]
    # An admin may do what an officer may.
    await answer(await client.get("/calls/live", headers=ADMIN), 200)
    await answer(await client.get("/audit", headers=ADMIN), 200)


async def test_the_token_file_is_read_again_when_it_changes(
    client: TestClient[Any, Any], tokens_file: Path
) -> None:
    new = "new-officer-token-0123456789"
    headers = {"Authorization": f"Bearer {new}"}
    await answer(await client.get("/calls/live", headers=headers), 401)
    alice = entry("a11ce000", "alice", "officer", OFFICER_TOKEN)
    rewrite(tokens_file, alice + entry("b0b00000", "bob", "officer", new))
    await answer(await client.get("/calls/live", headers=headers), 200)
    await answer(await client.get("/calls/live", headers=ADMIN), 401)  # root was removed
    rewrite(tokens_file, entry("2007f000", "root", "admin", ADMIN_TOKEN))  # alice, bob gone
    await answer(await client.get("/calls/live", headers=headers), 401)
    await answer(await client.get("/calls/live", headers=OFFICER), 401)
    revoked = entry("2007f000", "root", "admin", ADMIN_TOKEN, revoked_at="2026-12-05T03:00:00")
    rewrite(tokens_file, revoked)
    await answer(await client.get("/calls/live", headers=ADMIN), 401)
    rewrite(tokens_file, None)  # no file: no token at all
    await answer(await client.get("/calls/live", headers=ADMIN), 401)


async def test_a_tokens_file_others_may_write_is_refused_whole(
    client: TestClient[Any, Any], tokens_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone who may write the file could add a hash of their own: no token is valid."""
    await answer(await client.get("/calls/live", headers=OFFICER), 200)
    os.chmod(tokens_file, 0o622)
    await answer(await client.get("/calls/live", headers=OFFICER), 401)
    assert "writable by other accounts" in caplog.text
    os.chmod(tokens_file, 0o600)
    await answer(await client.get("/calls/live", headers=OFFICER), 200)


async def test_the_audit_log_names_the_tokens_person(
    client: TestClient[Any, Any], world: World, tokens_file: Path
) -> None:
    token, _ = add_token(tokens_file, "Jane Officer", "officer", "root")
    headers = {"Authorization": f"Bearer {token}"}
    await answer(
        await client.post("/calls/1/cut", json={"reason": "threats"}, headers=headers), 200
    )
    assert [(n.actor, n.role) for n in world.audit.notes] == [("Jane Officer", "officer")]


def rewrite(path: Path, text: str | None) -> None:
    """Replace (None: remove) the file, as an editor or `token add` would."""
    if text is None:
        path.unlink()
    else:
        path.write_text(text)


def test_token_lines_and_bearer_headers() -> None:
    tokens, problems = parse_tokens(
        entry("0000000a", "Alice Able", "officer", "a" * 20)
        + entry("0000000b", "Bob", "guard", "b" * 20)
        + '{"id": "0000000c", "person": "Carol", "role": "admin"}\n'
        + "not json at all\n"
        + entry("0000000e", "Eve", "admin", "a" * 20)
        + "officer dave "
        + "d" * 20
        + "\n"
    )
    assert sorted(p.name for p in tokens.values()) == ["Alice Able", "dave"]
    assert [p.split(":")[0] for p in problems] == [
        "line 2",
        "line 3",
        "line 4",
        "line 6",  # dave's token is in clear: accepted, and said so
        "token 0000000e of Eve is listed twice; ignored",
    ]
    assert "a" * 20 not in " ".join(problems) and "d" * 20 not in " ".join(problems)
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") == "" and bearer_token(None) == ""


def test_add_list_and_revoke_keep_only_hashes(tmp_path: Path) -> None:
    path = tmp_path / "var" / "api-tokens"
    token, made = add_token(path, "Jane Officer", "officer", "root")
    assert token.startswith("cc_") and len(token) == 46
    assert token not in path.read_text() and digest(token) in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert TokenFile(path).check(token) == Principal("Jane Officer", "officer")
    with pytest.raises(TokenError, match="already has a token"):
        add_token(path, "Jane Officer", "admin", "root")
    with pytest.raises(TokenError, match="invalid person"):
        add_token(path, "   ", "admin", "root")
    [listed] = list_tokens(path)
    assert (listed.id, listed.person, listed.role, listed.created_by) == (
        made.id,
        "Jane Officer",
        "officer",
        "root",
    )
    assert token not in repr(listed)
    revoked = revoke_token(path, made.id, "Ada Admin")
    assert revoked.revoked_by == "Ada Admin" and not revoked.active
    assert TokenFile(path).check(token) is None
    with pytest.raises(TokenError, match="already revoked"):
        revoke_token(path, made.id, "root")
    with pytest.raises(TokenError, match="no token"):
        revoke_token(path, "ffffffff", "root")
    again, _ = add_token(path, "Jane Officer", "admin", "root")  # a new one once revoked
    assert TokenFile(path).check(again) == Principal("Jane Officer", "admin")


def test_a_generated_token_never_begins_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """secrets.token_urlsafe begins with '-' once in 64: `--token -Xy...` then fails."""
    from callcontrol.adapters.http import token_store

    monkeypatch.setattr(token_store.secrets, "token_urlsafe", lambda n: "-" + "x" * 42)
    assert token_store.new_token() == "cc_-" + "x" * 42
    monkeypatch.undo()
    assert not any(token_store.new_token().startswith("-") for _ in range(2000))


def test_an_old_file_with_clear_tokens_is_rewritten_as_hashes(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens"
    old = "officer-token-from-an-old-file-0123"
    path.write_text(f"officer officer.smith {old}\n")
    path.chmod(0o600)
    assert TokenFile(path).check(old) == Principal("officer.smith", "officer")
    [listed] = list_tokens(path)  # any token command rewrites the file
    assert listed.person == "officer.smith" and old not in path.read_text()
    assert TokenFile(path).check(old) == Principal("officer.smith", "officer")


# --- the calls ---------------------------------------------------------------------------------


async def test_live_calls(client: TestClient[Any, Any], world: World) -> None:
    world.now = T0 + timedelta(seconds=90)
    data = await answer(await client.get("/calls/live", headers=OFFICER), 200)
    assert data["asterisk_connected"] is True
    assert [c["call_id"] for c in data["calls"]] == [1, 2]
    assert data["calls"][0] == {
        "call_id": 1,
        "cell": "A1-01",
        "prisoner": {"prison_number": "A1234BC", "name": "Prisoner A1234BC"},
        "number": "+442079460000",
        "started_at": "2026-11-28T12:00:00+00:00",
        "answered_at": "2026-11-28T12:01:00+00:00",
        "seconds_left": 570,
        "recorded": True,
        "privileged": False,
        "channel": "PJSIP/A1-01-00000001",
    }
    second = data["calls"][1]
    assert second["seconds_left"] is None and second["answered_at"] is None
    assert second["privileged"] is True and second["recorded"] is False


async def test_cut(client: TestClient[Any, Any], world: World) -> None:
    response = await client.post("/calls/1/cut", json={"reason": "threats"}, headers=OFFICER)
    data = await answer(response, 200)
    assert data == {"call_id": 1, "cut": True, "channel": "PJSIP/A1-01-00000001"}
    assert world.control.hangups == [("PJSIP/A1-01-00000001", 16)]
    [note] = world.audit.notes
    assert (note.actor, note.role, note.action, note.target, note.reason) == (
        "alice",
        "officer",
        "cut",
        "call:1",
        "threats",
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/calls/9/cut", {"reason": "r"}, 404, "no call 9"),
        ("/calls/3/cut", {"reason": "r"}, 404, "call 3 has ended"),
        ("/calls/1/cut", {}, 400, "reason is required"),
        ("/calls/1/cut", [1], 400, "JSON object"),
        ("/calls/x/cut", {"reason": "r"}, 404, "not found"),
        ("/calls/1/listen", {"reason": "r"}, 400, "officer_endpoint is required"),
        ("/calls/1/listen", {"officer_endpoint": "PJSIP/1@pstn"}, 400, "no dial strings"),
    ],
)
async def test_call_errors(
    client: TestClient[Any, Any], world: World, path: str, body: Any, status: int, error: str
) -> None:
    data = await answer(await client.post(path, json=body, headers=OFFICER), status)
    assert error in data["error"]
    assert world.control.hangups == [] and world.control.originates == []


async def test_not_json_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post("/calls/1/cut", data=b"reason=r", headers=OFFICER)
    assert "JSON object" in (await answer(response, 400))["error"]


async def test_409_when_the_ami_is_not_connected(
    client: TestClient[Any, Any], world: World
) -> None:
    world.control.connected = False
    response = await client.post("/calls/1/cut", json={"reason": "r"}, headers=OFFICER)
    assert "AMI not connected" in (await answer(response, 409))["error"]
    assert world.control.hangups == []


async def test_502_when_the_hangup_is_lost_and_it_is_not_resent(
    client: TestClient[Any, Any], world: World
) -> None:
    world.control.errors["PJSIP/A1-01-00000001"] = AsteriskActionLost("connection lost")
    response = await client.post("/calls/1/cut", json={"reason": "r"}, headers=OFFICER)
    error = (await answer(response, 502))["error"]
    assert "may or may not have been cut" in error and "not resent" in error
    assert len(world.control.hangups) == 1


async def test_listen(client: TestClient[Any, Any], world: World) -> None:
    body = {"officer_endpoint": "officer-1", "reason": "intelligence"}
    data = await answer(await client.post("/calls/1/listen", json=body, headers=OFFICER), 200)
    assert data == {"call_id": 1, "listening": True, "officer_endpoint": "PJSIP/officer-1"}
    [(channel, kwargs)] = world.control.originates
    assert channel == "PJSIP/officer-1" and kwargs["context"] == "cc-listen"
    assert kwargs["variables"]["CC_SPY_CHANNEL"] == "PJSIP/A1-01-00000001"


async def test_listen_to_a_privileged_call_is_403_and_audited(
    client: TestClient[Any, Any], world: World
) -> None:
    body = {"officer_endpoint": "PJSIP/officer-1", "reason": "r"}
    data = await answer(await client.post("/calls/2/listen", json=body, headers=ADMIN), 403)
    assert data == {"error": "privileged call: never monitored"}
    assert world.control.originates == []
    assert [(n.action, n.actor, n.role) for n in world.audit.notes] == [
        ("listen_refused", "root", "admin")
    ]


# --- cells, prisoners, the audit log -----------------------------------------------------------


async def test_disable_a_cell_cuts_its_calls(client: TestClient[Any, Any], world: World) -> None:
    body = {"reason": "handset smashed"}
    data = await answer(await client.post("/cells/A1-01/disable", json=body, headers=OFFICER), 200)
    assert data == {"cell": "A1-01", "enabled": False, "calls_cut": [1], "calls_not_cut": []}
    assert world.store.cells["A1-01"] == (False, "handset smashed")
    # An officer cuts calls; only an admin lets the cell call again.
    data = await answer(await client.post("/cells/A1-01/enable", headers=OFFICER), 403)
    assert "admin" in data["error"] and world.store.cells["A1-01"][0] is False
    data = await answer(await client.post("/cells/A1-01/enable", headers=ADMIN), 200)
    assert data == {"cell": "A1-01", "enabled": True}
    data = await answer(await client.post("/cells/B2-07/cut-calls", headers=OFFICER), 200)
    assert data == {"cell": "B2-07", "calls_cut": [2], "calls_not_cut": []}
    await answer(await client.post("/cells/Z9-99/disable", headers=OFFICER), 404)
    assert world.audit.actions() == ["disable", "cut", "enable", "cut"]


async def test_calls_not_cut_are_reported(client: TestClient[Any, Any], world: World) -> None:
    world.control.connected = False
    data = await answer(await client.post("/cells/A1-01/disable", headers=OFFICER), 200)
    assert data["calls_cut"] == [] and data["calls_not_cut"][0]["call_id"] == 1
    assert "AMI not connected" in data["calls_not_cut"][0]["error"]


async def test_suspend_a_prisoner(client: TestClient[Any, Any], world: World) -> None:
    path = "/prisoners/B5678CD"
    data = await answer(await client.post(f"{path}/suspend", json={}, headers=OFFICER), 200)
    assert data == {"prisoner": "B5678CD", "active": False, "calls_cut": [2], "calls_not_cut": []}
    data = await answer(await client.post(f"{path}/reinstate", headers=OFFICER), 403)
    assert "admin" in data["error"] and world.store.prisoners["B5678CD"][0] is False
    data = await answer(await client.post(f"{path}/reinstate", headers=ADMIN), 200)
    assert data == {"prisoner": "B5678CD", "active": True}
    data = await answer(await client.post(f"{path}/cut-calls", headers=OFFICER), 200)
    assert data["calls_cut"] == [2]
    await answer(await client.post("/prisoners/NOBODY/suspend", headers=OFFICER), 404)


async def test_audit_log(client: TestClient[Any, Any]) -> None:
    await client.post("/calls/1/cut", json={"reason": "r"}, headers=OFFICER)
    data = await answer(await client.get("/audit?limit=5&action=cut", headers=ADMIN), 200)
    assert [e["action"] for e in data["entries"]] == ["cut"]
    for query in ("limit=0", "limit=x", "limit=100000"):
        await answer(await client.get(f"/audit?{query}", headers=ADMIN), 400)


async def test_unknown_routes_and_methods_answer_json(client: TestClient[Any, Any]) -> None:
    assert (await answer(await client.get("/nowhere"), 404))["error"] == "not found"
    await answer(await client.get("/calls/1/cut", headers=OFFICER), 405)


async def test_every_request_is_logged_with_who_and_what(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callcontrol.http")
    await client.post("/calls/1/cut", json={"reason": "r"}, headers=OFFICER)
    await client.post("/calls/2/listen", json={"officer_endpoint": "o-1"}, headers=OFFICER)
    await client.get("/calls/live")
    lines = [r.getMessage() for r in caplog.records if r.name == "callcontrol.http"]
    assert any(line.startswith("API alice (officer) POST /calls/1/cut -> 200") for line in lines)
    assert any(
        "API alice (officer) POST /calls/2/listen -> 403" in line and "privileged" in line
        for line in lines
    )
    assert any(line.startswith("API - GET /calls/live -> 401") for line in lines)
    assert not any(OFFICER_TOKEN in line for line in lines)


# --- the API over the real SQL store ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_database")


async def _seed(sessions: Any) -> list[m.Call]:
    """Cell A1-01 with Ann (an open call) and Bo (an open privileged call)."""
    secret = TEST_PIN_SECRET.encode()
    calls = []
    async with sessions.begin() as s:
        ops = session_services(s, pin_keys=lambda: secret)
        await ops.cells.add(TESTER, "A1-01")
        await ops.cells.add(TESTER, "B2-07")
        cell = await s.scalar(select(m.Cell).where(m.Cell.name == "A1-01"))
        assert cell is not None
        for number, name, pin, privileged in (
            ("A1234BC", "Ann Example", "1234", False),
            ("B5678CD", "Bo Example", "9870", True),
        ):
            await ops.prisoners.add(TESTER, number, name, pin, "A1-01")
            p = await s.scalar(select(m.Prisoner).where(m.Prisoner.prison_number == number))
            assert p is not None
            uid = f"1700000000.{len(calls) + 1}"
            d = m.CallDecision(
                handset="A1-01", cell_id=cell.id, prisoner_id=p.id, dialled="02079460000",
                number="+442079460000", outcome="allow", reason="approved_contact",
                privileged=privileged, channel=f"PJSIP/A1-01-{uid}", uniqueid=uid,
            )  # fmt: skip
            s.add(d)
            await s.flush()
            c = m.Call(
                decision_id=d.id, prisoner_id=p.id, cell_id=cell.id, number="+442079460000",
                privileged=privileged, channel=d.channel, uniqueid=uid, started_at=T0,
            )  # fmt: skip
            s.add(c)
            await s.flush()
            s.add(
                Reservation(
                    prisoner_id=p.id, call_id=c.id, amount_pence=0, max_seconds=900, rate=0,
                    destination_class="uk_landline", rounding="per_second", free=True,
                )
            )  # fmt: skip
            calls.append(c)
    return calls


async def test_the_api_over_the_sql_store(db_url: str, tokens_file: Path) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    try:
        ann, bo = await _seed(sessions)
        control = FakeControl()
        channels = {ann.uniqueid: ann.channel, bo.uniqueid: bo.channel}
        supervisor = Supervisor(
            SqlSuperviseStore(sessions),
            control,
            SqlAuditLog(sessions),
            clock=lambda: T0 + timedelta(seconds=30),
            channels=lambda: channels,
        )
        app = make_app(supervisor, TokenFile(tokens_file))
        async with TestClient(TestServer(app)) as client:
            assert await answer(await client.get("/health"), 200) == {"ami": True, "db": True}
            live = await answer(await client.get("/calls/live", headers=OFFICER), 200)
            assert [(c["call_id"], c["prisoner"]["name"]) for c in live["calls"]] == [
                (ann.id, "Ann Example"),
                (bo.id, "Bo Example"),
            ]
            body = {"officer_endpoint": "officer-1"}
            await answer(
                await client.post(f"/calls/{bo.id}/listen", json=body, headers=OFFICER), 403
            )
            # A cell handset is never an officer's endpoint.
            body = {"officer_endpoint": "B2-07"}
            await answer(
                await client.post(f"/calls/{ann.id}/listen", json=body, headers=OFFICER), 400
            )
            await answer(await client.post("/cells/Z9-99/disable", headers=OFFICER), 404)
            body = {"reason": "handset smashed"}
            data = await answer(
                await client.post("/cells/A1-01/disable", json=body, headers=OFFICER), 200
            )
            assert data["calls_cut"] == [ann.id, bo.id]
            await answer(await client.post("/prisoners/A1234BC/suspend", headers=OFFICER), 200)
            entries = (await answer(await client.get("/audit", headers=ADMIN), 200))["entries"]
        assert [(e["action"], e["target"]) for e in reversed(entries)] == [
            ("cell_add", "cell:A1-01"),  # the world set up through the operator's services
            ("cell_add", "cell:B2-07"),
            ("prisoner_add", "prisoner:A1234BC"),
            ("prisoner_add", "prisoner:B5678CD"),
            ("listen_refused", f"call:{bo.id}"),
            ("disable", "cell:A1-01"),
            ("cut", f"call:{ann.id}"),
            ("cut", f"call:{bo.id}"),
            ("suspend", "prisoner:A1234BC"),
            ("cut", f"call:{ann.id}"),  # still open in the database: the fake hangup ends nothing
        ]
        assert entries[0]["actor"] == "alice" and entries[0]["at"] is not None  # the newest
        async with sessions() as s:
            cell = await s.scalar(select(m.Cell).where(m.Cell.name == "A1-01"))
            ann_row = await s.scalar(
                select(m.Prisoner).where(m.Prisoner.prison_number == "A1234BC")
            )
            assert cell is not None and ann_row is not None
            assert (cell.enabled, cell.disabled_reason) == (False, "handset smashed")
            assert ann_row.active is False
    finally:
        await engine.dispose()


# --- the server, and the CLI through it --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_taken_port_stops_the_daemon_with_one_line(world: World, tokens_file: Path) -> None:
    first = HttpServer(make_app(world.supervisor, TokenFile(tokens_file)), "127.0.0.1", 0)
    await first.start()
    try:
        second = HttpServer(web.Application(), "127.0.0.1", first.port)
        with pytest.raises(HttpServerError, match="cannot listen on 127.0.0.1") as e:
            await second.start()
        assert isinstance(e.value, ConfigError)
    finally:
        await first.stop()


class Served:
    """The application served on a free port by a thread of its own, for the synchronous CLI."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = HttpServer(app, "127.0.0.1", 0)

    def __enter__(self) -> int:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server.port

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CALLCONTROL_") and not name.startswith("CALLCONTROL_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CALLCONTROL_BASE_DIR", str(tmp_path))
    monkeypatch.setenv("CALLCONTROL_SECURITY_PIN_SECRET", TEST_PIN_SECRET)
    return monkeypatch


@pytest.fixture
def served(world: World, tokens_file: Path, cli_env: pytest.MonkeyPatch) -> Iterator[World]:
    with Served(make_app(world.supervisor, TokenFile(tokens_file))) as port:
        cli_env.setenv("CALLCONTROL_HTTP_PORT", str(port))
        cli_env.setenv("CALLCONTROL_HTTP_TOKEN", OFFICER_TOKEN)
        yield world


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_calls(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "calls", "live")
    assert status == 0 and err == ""
    assert out.splitlines()[0].split()[:4] == ["CALL", "CELL", "PRISONER", "NAME"]
    assert "PJSIP/A1-01-00000001" in out and "Prisoner B5678CD" in out
    assert run(capsys, "calls", "cut", "1", "--reason", "threats")[:2] == (
        0,
        "call 1 cut (PJSIP/A1-01-00000001 hung up)\n",
    )
    status, out, _ = run(capsys, "calls", "listen", "1", "--officer", "officer-1", "--json")
    assert status == 0 and '"listening": true' in out
    # Refusals: exit 2, with the API's words.
    status, _, err = run(capsys, "calls", "listen", "2", "--officer", "officer-1")
    assert status == 2 and err == (
        "callcontrol: error: privileged call: never monitored (HTTP 403)\n"
    )
    assert run(capsys, "calls", "cut", "9", "--reason", "r")[0] == 2
    cli_env = pytest.MonkeyPatch()
    cli_env.setenv("CALLCONTROL_HTTP_TOKEN", "wrong-token-0123456789")
    assert run(capsys, "calls", "live")[0] == 2
    cli_env.undo()
    # Could not be done: exit 1.
    served.control.connected = False
    status, _, err = run(capsys, "calls", "cut", "1", "--reason", "r")
    assert status == 1 and "AMI not connected" in err and "(HTTP 409)" in err


def test_cli_without_daemon_or_token(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_env.setenv("CALLCONTROL_HTTP_PORT", str(_free_port()))
    status, _, err = run(capsys, "calls", "live")
    assert status == 2 and "no API token" in err
    token_file = tmp_path / "my-token"
    token_file.write_text(OFFICER_TOKEN + "\n")
    token_file.chmod(0o600)
    status, out, err = run(capsys, "calls", "live", "--token-file", str(token_file))
    assert status == 1 and out == "" and err.startswith("callcontrol: error: no running daemon")
    assert len(err.splitlines()) == 1


def test_a_token_on_the_command_line_is_refused_outside_the_lab(
    served: World, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every local account reads argv (ps, /proc/PID/cmdline): the token goes elsewhere."""
    cli_env.delenv("CALLCONTROL_HTTP_TOKEN")
    status, out, err = run(capsys, "calls", "cut", "1", "--reason", "r", "--token", OFFICER_TOKEN)
    assert status == 2 and out == "" and "--token-file" in err
    assert served.control.hangups == []
    cli_env.setenv("CALLCONTROL_LAB_ENABLED", "true")  # the lab's convenience
    assert run(capsys, "calls", "live", "--token", OFFICER_TOKEN)[0] == 0


def test_cli_token_add_list_revoke(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("token", "add", "--person", "Jane Officer", "--role", "officer", "--json")
    status, out, _ = run(capsys, *argv)
    assert status == 0
    made = json.loads(out)
    token = made["token"]
    assert token.startswith("cc_") and made["person"] == "Jane Officer"
    path = Path(os.environ["CALLCONTROL_BASE_DIR"]) / "var" / "api-tokens"
    assert token not in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    status, _, err = run(capsys, "token", "add", "--person", "Jane Officer", "--role", "admin")
    assert status == 2 and "already has a token" in err
    status, out, _ = run(capsys, "token", "list")
    assert status == 0 and "Jane Officer" in out and made["id"] in out and token not in out
    assert run(capsys, "token", "revoke", made["id"])[0] == 0
    assert TokenFile(path).check(token) is None
    assert "no tokens" in run(capsys, "token", "list")[1]
    assert "Jane Officer" in run(capsys, "token", "list", "--all")[1]
    assert run(capsys, "token", "revoke", made["id"])[0] == 2
    assert run(capsys, "token", "add", "officer.smith", "--role", "admin")[0] == 2  # --person


def test_cell_disable_cuts_live_calls_through_the_daemon(
    served: World, sqlite_url: str, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CALLCONTROL_DATABASE_URL", sqlite_url)
    assert run(capsys, "cell", "add", "A1-01")[0] == 0
    status, out, err = run(capsys, "cell", "disable", "A1-01", "--reason", "handset smashed")
    assert (status, err) == (0, "")
    assert out == "cell A1-01 disabled (handset smashed): no calls from it\n1 live call(s) cut\n"
    assert served.control.hangups == [("PJSIP/A1-01-00000001", 16)]
    assert served.audit.notes[0].reason == "handset smashed"
    run(capsys, "prisoner", "add", "B5678CD", "--name", "Bo", "--generate-pin", "--cell", "A1-01")
    status, out, _ = run(capsys, "prisoner", "suspend", "B5678CD", "--json")
    assert status == 0 and '"calls_cut": [2]' in out


def test_cell_disable_without_a_reachable_daemon(
    sqlite_url: str,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tokens_file: Path,
) -> None:
    cli_env.setenv("CALLCONTROL_DATABASE_URL", sqlite_url)
    cli_env.setenv("CALLCONTROL_HTTP_PORT", str(_free_port()))
    run(capsys, "cell", "add", "A1-01")
    cli_env.setenv("CALLCONTROL_HTTP_TOKEN", OFFICER_TOKEN)
    status, out, err = run(capsys, "cell", "disable", "A1-01")
    assert (status, err) == (0, "")
    assert out == "cell A1-01 disabled: no calls from it\nno running daemon reached: no call cut\n"
    cli_env.delenv("CALLCONTROL_HTTP_TOKEN")
    status, out, _ = run(capsys, "cell", "disable", "A1-01")
    assert status == 0 and "no API token" in out
    # In the audit log: the token's person, then (no token) the login name; first of all the
    # cell added, by the login name (adding a cell is not supervision: no token asked for).
    status, out, _ = run(capsys, "audit", "list", "--json")
    actors = [(e["actor"], e["role"]) for e in json.loads(out)]
    me = (getpass.getuser(), "operator")
    assert actors == [me, ("alice", "officer"), me]
    # With an officer's token, the command line does not undo it either; an admin's does.
    cli_env.setenv("CALLCONTROL_HTTP_TOKEN", OFFICER_TOKEN)
    status, _, err = run(capsys, "cell", "enable", "A1-01")
    assert status == 2 and "only an admin may enable cell A1-01" in err
    assert json.loads(run(capsys, "cell", "list", "--json")[1])[0]["enabled"] is False
    cli_env.setenv("CALLCONTROL_HTTP_TOKEN", ADMIN_TOKEN)
    assert run(capsys, "cell", "enable", "A1-01")[0] == 0
    status, out, _ = run(capsys, "audit", "list", "--json")
    assert (json.loads(out)[0]["actor"], json.loads(out)[0]["action"]) == ("root", "enable")
