"""GET /alerts and POST /cells/{name}/unlock over the SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.pin_store import SqlPinAlerts
from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.db.tables import AuditEntry, HandsetPinState
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenFile
from callcontrol.services.supervise import Supervisor
from tests.db.conftest import Cli
from tests.db.test_pin_cli import _guess
from tests.protocol.test_http_api import entry
from tests.services.test_supervise import T0, FakeControl

OFFICER = {"Authorization": "Bearer officer-token-0123456789abcdef"}


async def answer(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


def test_staff_see_the_alert_and_unlock_through_the_api(cli: Cli, tmp_path: Path) -> None:
    cli.ok("cell", "add", "A1-01")
    cli.ok("prisoner", "add", "A1", "--name", "Ann", "--pin-stdin", "--cell", "A1-01", stdin="1357")
    asyncio.run(_guess(cli.url, ["0000", "1111", "2222", "3333", "4444"]))
    tokens = tmp_path / "api-tokens"
    tokens.write_text(entry("a11ce000", "alice", "officer", "officer-token-0123456789abcdef"))
    tokens.chmod(0o600)
    asyncio.run(_through_the_api(cli.url, tokens))


async def _through_the_api(url: str, tokens: Path) -> None:
    engine = make_engine(url)
    sessions = session_factory(engine)
    try:
        supervisor = Supervisor(
            SqlSuperviseStore(sessions),
            FakeControl(),
            SqlAuditLog(sessions),
            clock=lambda: T0,
            channels=dict,
        )
        app = make_app(supervisor, TokenFile(tokens), SqlPinAlerts(sessions))
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/alerts")).status == 401
            got = await answer(await client.get("/alerts", headers=OFFICER), 200)
            [alert] = got["alerts"]
            assert (alert["cell"], alert["status"], alert["failures"]) == ("A1-01", "in force", 5)
            assert (await client.get("/alerts?days=x", headers=OFFICER)).status == 400
            url = "/cells/A1-01/unlock"
            assert (await client.post(url, headers=OFFICER)).status == 400  # no reason
            missing = await client.post("/cells/Z9/unlock", headers=OFFICER, json={"reason": "r"})
            assert missing.status == 404
            done = await answer(
                await client.post(url, headers=OFFICER, json={"reason": "wrong cell guessed"}),
                200,
            )
            assert done["cell"] == "A1-01" and done["was_locked"] is True
            got = await answer(await client.get("/alerts", headers=OFFICER), 200)
            assert [a["status"] for a in got["alerts"]] == ["unlocked"]
        async with sessions() as s:
            assert await s.scalar(select(HandsetPinState.locked_until)) is None
            entry = await s.scalar(select(AuditEntry).where(AuditEntry.action == "unlock"))
            assert entry is not None
            assert (entry.actor, entry.role, entry.reason) == (
                "alice",
                "officer",
                "wrong cell guessed",
            )
    finally:
        await engine.dispose()
