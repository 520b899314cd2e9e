"""Hostile path and query parameters: each refused with a clear 400 before any service is asked,
nothing acted on, and the log line readable (no decoded control characters, bounded)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.protocol.test_http_api import (  # noqa: F401
    ADMIN,
    OFFICER,
    World,
    answer,
    client,
    tokens_file,
    world,
)

LONG = "A" * 5000


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (f"/cells/{LONG}/disable", "invalid cell name 'AAAA"),
        ("/cells/A1%0A01/disable", "invalid cell name 'A1\\n01'"),
        ("/cells/A1%0001/disable", "invalid cell name"),
        ("/cells/A1%1B%5B31m/disable", "invalid cell name"),
        ("/cells/-A1/disable", "beginning with a letter or digit"),
        ("/cells/%C0%AE%C0%AE/disable", "invalid cell name"),  # an overlong '..'
        ("/cells/A1%FF/disable", "invalid cell name"),  # not UTF-8
        ("/cells/A%E2%80%AE1/disable", "invalid cell name"),  # right-to-left override
        ("/cells/%EF%BC%A11/disable", "invalid cell name"),  # a fullwidth 'A'
        ("/cells/..%2F..%2Fetc/disable", "invalid cell name"),
        ("/prisoners/A1234BC%20/suspend", "invalid prison number"),
        ("/prisoners/A1234B%C3%87/suspend", "invalid prison number"),
        (f"/prisoners/{LONG}/suspend", "1 to 32 letters or digits"),
    ],
)
async def test_hostile_path_parameters_are_400(
    client: TestClient[Any, Any],  # noqa: F811
    world: World,  # noqa: F811
    path: str,
    error: str,
) -> None:
    response = await client.post(URL(path, encoded=True), json={"reason": "r"}, headers=OFFICER)
    data = await answer(response, 400)
    assert data["error"].startswith(error) or error in data["error"], data
    assert len(data["error"]) < 300  # never the whole of what was sent
    assert world.control.hangups == [] and world.audit.notes == []
    assert all(enabled for enabled, _ in world.store.cells.values())


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("limit=%D9%A5", "limit must be a whole number"),  # an Arabic-Indic 5
        ("limit=+5", "limit must be a whole number"),
        ("limit=%205", "limit must be a whole number"),
        ("limit=0x10", "limit must be a whole number"),
        ("limit=99999999999999999999999", "limit must be a whole number"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=1&limit=1000", "query parameter limit is given more than once"),
        ("limits=5", "unknown query parameter(s) 'limits'"),
        (f"{LONG}=1", "unknown query parameter(s) 'AAAA"),
        (f"action={LONG}", "query parameter action is too long"),
        ("action=cut%0Aforged", "query parameter action contains control characters"),
        ("action=CUT", "invalid action 'CUT'"),
        ("action=cut%27%20OR%201%3D1", "invalid action"),
    ],
)
async def test_hostile_query_parameters_are_400(
    client: TestClient[Any, Any],  # noqa: F811
    query: str,
    error: str,
) -> None:
    response = await client.get(URL(f"/audit?{query}", encoded=True), headers=ADMIN)
    data = await answer(response, 400)
    assert data["error"].startswith(error), data
    assert len(data["error"]) < 300


async def test_a_query_on_an_act_or_a_bare_read_is_refused(
    client: TestClient[Any, Any],  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    response = await client.post("/calls/1/cut?force=1", json={"reason": "r"}, headers=OFFICER)
    assert "unknown query parameter(s) 'force'" in (await answer(response, 400))["error"]
    assert world.control.hangups == []
    await answer(await client.get("/calls/live?x=1", headers=OFFICER), 400)
    await answer(await client.get("/health?x=1"), 400)


async def test_the_log_line_escapes_what_was_sent_and_is_bounded(
    client: TestClient[Any, Any],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="callcontrol.http")
    forged = "/cells/A1%0A2026-12-05%20INFO%20API%20root%20(admin)/disable"
    await client.post(URL(forged, encoded=True), headers=OFFICER)
    await client.post(URL(f"/cells/{LONG}/disable", encoded=True), headers=OFFICER)
    lines = [r.getMessage() for r in caplog.records if r.name == "callcontrol.http"]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "/cells/A1%0A2026" in lines[0] and "-> 400" in lines[0]
    assert len(lines[1]) < 500 and "..." in lines[1]


async def test_a_token_needs_checking_before_parameters(
    client: TestClient[Any, Any],  # noqa: F811
) -> None:
    """No answer about parameters (nor anything else) to whoever has no valid token."""
    response = await client.post(URL("/cells/A1%0A01/disable", encoded=True))
    await answer(response, 401)
    await answer(await client.get("/audit?limit=x"), 401)
