"""The OpenAPI description (callcontrol/data/openapi): valid OpenAPI 3.1, the same routes as the
application the daemon builds (both ways), served at /openapi.json, and the daemon's real
answers (over a real SQLite store) matching the described schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as validate_openapi

from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.history_store import SqlHistoryReader
from callcontrol.adapters.db.pin_store import SqlPinAlerts
from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.db.tables import HandsetPinState, PinLockout
from callcontrol.adapters.http import openapi
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenFile
from callcontrol.adapters.http.history import HistoryApi
from callcontrol.config import Settings
from callcontrol.services.supervise import Supervisor
from tests.protocol.openapi_check import Described, daemon_app, routes
from tests.protocol.test_http_api import ADMIN, OFFICER, _seed, tokens_file  # noqa: F401
from tests.services.test_supervise import T0, FakeControl

AUDITOR_TOKEN = "auditor-token-0123456789abcdef"
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}


def test_the_description_is_valid_openapi_3_1() -> None:
    doc = openapi.load()
    validate_openapi(doc)  # raises on any error
    assert doc["openapi"].startswith("3.1.")
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            # Every operation says what it is for, and which answers it gives.
            assert operation.get("summary") and operation.get("operationId"), (method, path)
            assert operation["responses"], (method, path)
            right = operation.get("x-callcontrol-right")
            if right is not None:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def _write(folder: Path, name: str, doc: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(doc))


def test_description_files_that_collide_are_refused(tmp_path: Path) -> None:
    """Each part of the API adds a file; two describing the same thing is an error."""
    base = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}
    _write(tmp_path, "base.json", base)
    get = {"get": {"responses": {"200": {"description": "ok"}}}}
    post = {"post": {"responses": {"200": {"description": "ok"}}}}
    _write(tmp_path, "a.json", {"paths": {"/x": get}, "components": {"schemas": {"X": {}}}})
    _write(tmp_path, "b.json", {"paths": {"/x": post}, "tags": [{"name": "b"}]})
    doc = openapi.load(tmp_path)
    assert openapi.operations(doc) == {("GET", "/x"), ("POST", "/x")}
    assert doc["components"]["schemas"] == {"X": {}} and doc["tags"] == [{"name": "b"}]
    for name, fragment, error in (
        ("c.json", {"paths": {"/x": get}}, "get /x is described twice"),
        ("c.json", {"components": {"schemas": {"X": {}}}}, "components/schemas/X"),
        ("c.json", {"tags": [{"name": "b"}]}, "tag b"),
        ("c.json", {"info": {}}, "unknown keys"),
    ):
        _write(tmp_path, name, fragment)
        with pytest.raises(openapi.DescriptionError, match=error):
            openapi.load(tmp_path)
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(openapi.DescriptionError, match="c.json"):
        openapi.load(tmp_path)


async def test_every_route_is_described_and_every_description_is_a_route(
    sqlite_url: str, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        app = await daemon_app(settings, session_factory(engine), engine)
    finally:
        await engine.dispose()
    served = routes(app)
    described = openapi.operations(openapi.load())
    assert served - described == set(), "routes the description does not describe"
    assert described - served == set(), "described operations that are not routes"
    # Not an empty comparison: the API's known routes are among them.
    assert {("GET", "/calls/live"), ("GET", "/metrics"), ("GET", "/openapi.json")} <= served


def test_the_route_listing_sees_sub_applications_and_leaves_out_the_console() -> None:
    async def nothing(request: web.Request) -> web.Response:
        return web.Response()

    app, console, recordings = web.Application(), web.Application(), web.Application()
    console.router.add_get("/calls", nothing)
    recordings.router.add_get("/{id}/audio", nothing)
    app.router.add_get("/console", nothing)  # the console's redirect to /console/
    app.router.add_post("/consoles", nothing)
    app.add_subapp("/console/", console)
    app.add_subapp("/recordings/", recordings)
    assert routes(app) == {("POST", "/consoles"), ("GET", "/recordings/{id}/audio")}


# --- real answers against the schemas ----------------------------------------------------------


@dataclass
class Api:
    client: TestClient[Any, Any]
    described: Described
    ids: dict[str, int]

    async def call(
        self,
        method: str,
        template: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        query: str = "",
        **path: str,
    ) -> Any:
        url = template.format(**path) + (f"?{query}" if query else "")
        response = await self.client.request(method, url, headers=headers, json=json)
        assert response.status == status, await response.text()
        return await self.described.check(response, method, template)


@pytest.fixture
async def api(sqlite_url: str, tokens_file: Path) -> AsyncIterator[Api]:  # noqa: F811
    with tokens_file.open("a") as f:
        from tests.protocol.test_http_api import entry

        f.write(entry("a0d17000", "Audrey Auditor", "auditor", AUDITOR_TOKEN))
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        ann, bo = await _seed(sessions)
        async with sessions.begin() as s:
            now = datetime.now(UTC)
            until = now + timedelta(minutes=15)
            s.add(HandsetPinState(cell_id=1, locked_until=until, level=1))
            s.add(PinLockout(cell_id=1, started_at=now, until=until, level=1, failures=5))
        supervisor = Supervisor(
            SqlSuperviseStore(sessions),
            FakeControl(),
            SqlAuditLog(sessions),
            clock=lambda: T0 + timedelta(seconds=30),
            channels=lambda: {ann.uniqueid: ann.channel, bo.uniqueid: bo.channel},
        )
        history = HistoryApi(SqlHistoryReader(sessions), ZoneInfo("Europe/London"), "GB")
        app = make_app(supervisor, TokenFile(tokens_file), SqlPinAlerts(sessions), history)
        async with TestClient(TestServer(app)) as client:
            yield Api(client, Described(), {"ann": ann.id, "bo": bo.id})
    finally:
        await engine.dispose()


async def test_the_description_is_served_without_a_token(api: Api) -> None:
    served = await api.call("GET", "/openapi.json", 200)
    assert served == openapi.load()
    await api.call("GET", "/health", 200)


async def test_answers_of_the_calls_routes_match_the_description(api: Api) -> None:
    live = await api.call("GET", "/calls/live", 200, headers=AUDITOR)
    assert [c["call_id"] for c in live["calls"]] == [api.ids["ann"], api.ids["bo"]]
    history = await api.call("GET", "/calls", 200, headers=OFFICER, query="limit=1")
    assert len(history["calls"]) == 1 and history["next_before"] is not None
    csv = await api.call("GET", "/calls", 200, headers=OFFICER, query="format=csv")
    assert csv.startswith('"decision_id"')
    await api.call("GET", "/calls", 400, headers=OFFICER, query="limit=x")
    await api.call("GET", "/calls", 400, headers=OFFICER, query="cell=%00")
    cut = "/calls/{call_id}/cut"
    await api.call("POST", cut, 401, call_id="1", json={"reason": "r"})
    await api.call("POST", cut, 403, headers=AUDITOR, call_id="1", json={"reason": "r"})
    await api.call("POST", cut, 400, headers=OFFICER, call_id=str(api.ids["ann"]), json={})
    await api.call("POST", cut, 404, headers=OFFICER, call_id="999", json={"reason": "r"})
    done = await api.call(
        "POST", cut, 200, headers=OFFICER, call_id=str(api.ids["ann"]), json={"reason": "r"}
    )
    assert done["cut"] is True
    body = {"officer_endpoint": "officer-1", "reason": "r"}
    listen = "/calls/{call_id}/listen"
    await api.call("POST", listen, 403, headers=OFFICER, call_id=str(api.ids["bo"]), json=body)


async def test_answers_of_the_cells_and_prisoners_routes_match_the_description(api: Api) -> None:
    why = {"reason": "handset smashed"}
    cell = {"headers": OFFICER, "json": why, "name": "A1-01"}
    got = await api.call("POST", "/cells/{name}/disable", 200, **cell)  # type: ignore[arg-type]
    assert got["enabled"] is False and got["calls_cut"] == [api.ids["ann"], api.ids["bo"]]
    await api.call("POST", "/cells/{name}/cut-calls", 200, **cell)  # type: ignore[arg-type]
    await api.call("POST", "/cells/{name}/enable", 403, **cell)  # type: ignore[arg-type]
    await api.call("POST", "/cells/{name}/enable", 200, headers=ADMIN, json=why, name="A1-01")
    await api.call("POST", "/cells/{name}/disable", 404, headers=OFFICER, name="Z9-99")
    await api.call("POST", "/cells/{name}/disable", 400, headers=OFFICER, name="-x")
    unlocked = await api.call("POST", "/cells/{name}/unlock", 200, **cell)  # type: ignore[arg-type]
    assert unlocked["was_locked"] is True
    await api.call("POST", "/cells/{name}/unlock", 400, headers=OFFICER, json={}, name="A1-01")
    who = {"headers": OFFICER, "number": "A1234BC"}
    await api.call("POST", "/prisoners/{number}/suspend", 200, **who)  # type: ignore[arg-type]
    await api.call("POST", "/prisoners/{number}/cut-calls", 200, **who)  # type: ignore[arg-type]
    await api.call("POST", "/prisoners/{number}/reinstate", 403, **who)  # type: ignore[arg-type]
    await api.call("POST", "/prisoners/{number}/reinstate", 200, headers=ADMIN, number="A1234BC")
    await api.call("POST", "/prisoners/{number}/suspend", 404, headers=OFFICER, number="NOBODY")


async def test_answers_of_the_audit_and_alerts_routes_match_the_description(api: Api) -> None:
    alerts = await api.call("GET", "/alerts", 200, headers=AUDITOR)
    assert [a["status"] for a in alerts["alerts"]] == ["in force"]
    await api.call("GET", "/alerts", 400, headers=AUDITOR, query="days=1e9")
    await api.call(
        "POST", "/calls/{call_id}/cut", 200, headers=OFFICER, json={"reason": "threats"},
        call_id=str(api.ids["ann"]),
    )  # fmt: skip
    entries = (await api.call("GET", "/audit", 200, headers=AUDITOR))["entries"]
    assert (entries[0]["actor"], entries[0]["action"]) == ("alice", "cut")  # newest first
    await api.call("GET", "/audit", 403, headers=OFFICER)
    await api.call("GET", "/audit", 400, headers=ADMIN, query="action=DROP%20TABLE")
