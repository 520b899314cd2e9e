"""Roles at the API's edge (domain/roles.py): every described operation, asked by each role, on
the application the daemon builds over a real SQLite store. An auditor reads and is refused
every change (and changes nothing); an officer is refused an admin's acts; the tokens file and
`callcontrol token add` accept auditors."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.http import openapi
from callcontrol.adapters.http.api import refusal
from callcontrol.adapters.http.auth import Principal, TokenFile, parse_tokens
from callcontrol.config import Settings
from callcontrol.domain.roles import ADMIN, AUDITOR, OFFICER, ROLES, Right, changes, may
from tests.db.test_recording_search import seed_recording
from tests.protocol.openapi_check import daemon_app
from tests.protocol.test_http_api import _seed, cli_env, entry, run, tokens_file  # noqa: F401

TOKENS = {role: f"{role}-token-0123456789abcdef" for role in ROLES}
# A value for each path parameter of the described routes (a new one must be added here).
PATH_VALUES = {
    "call_id": "1",
    "name": "A1-01",
    "number": "A1234BC",
    "contact": "+442079460000",
    "id": "1",
    "recording_id": "1",
}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@dataclass(frozen=True, order=True)
class Operation:
    method: str
    template: str
    right: Right

    @property
    def url(self) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in PATH_VALUES, f"add a value for {{{name}}} to PATH_VALUES"
            return PATH_VALUES[name]

        return re.sub(r"\{([^}]+)\}", value, self.template)


def guarded() -> list[Operation]:
    """Every described operation that needs a token, with the right it needs."""
    doc = openapi.load()
    return sorted(
        Operation(method.upper(), path, Right(op["x-callcontrol-right"]))
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if "x-callcontrol-right" in op
    )


@dataclass
class Daemon:
    client: TestClient[Any, Any]
    sessions: Any

    async def ask(self, op: Operation, role: str | None) -> tuple[int, str]:
        headers = bearer(role) if role else {}
        body = {"reason": "checking roles", "officer_endpoint": "officer-1"}
        send = {"json": body} if op.method == "POST" else {}
        response = await self.client.request(op.method, op.url, headers=headers, **send)
        error = ""
        if response.content_type == "application/json":
            data = await response.json()
            error = data.get("error", "") if isinstance(data, dict) else ""
        return response.status, error

    async def changed(self) -> dict[str, Any]:
        """What an act would change: the audit log, cells, prisoners, contacts, calls."""
        async with self.sessions() as s:
            return {
                # Playing a recording is a read that is audited: not a change.
                "audit": await s.scalar(
                    select(func.count())
                    .select_from(m.AuditEntry)
                    .where(m.AuditEntry.action.not_in(("play", "download")))
                ),
                "cells": sorted(await s.execute(select(m.Cell.name, m.Cell.enabled))),
                "prisoners": sorted(
                    await s.execute(select(m.Prisoner.prison_number, m.Prisoner.active))
                ),
                "contacts": sorted(await s.execute(select(m.Contact.number, m.Contact.status))),
                "calls": sorted(await s.execute(select(m.Call.id, m.Call.ended_at))),
            }


@pytest.fixture
async def daemon(sqlite_url: str, settings_for: Callable[..., Settings]) -> AsyncIterator[Daemon]:
    settings = settings_for(sqlite_url)
    tokens = settings.path(settings.http.tokens_file)
    tokens.parent.mkdir(parents=True, exist_ok=True)
    tokens.write_text(
        "".join(entry(f"{i:08x}", f"{r} person", r, TOKENS[r]) for i, r in enumerate(ROLES, 1))
    )
    tokens.chmod(0o600)
    engine = make_engine(sqlite_url)
    sessions = session_factory(engine)
    try:
        calls = await _seed(sessions)
        store_dir = settings.path(settings.recording.store_dir)
        await seed_recording(sessions, store_dir, settings.base_dir / "spool", calls[0].id)
        app = await daemon_app(settings, sessions, engine)
        async with TestClient(TestServer(app)) as client:
            yield Daemon(client, sessions)
    finally:
        await engine.dispose()


def test_every_guarded_operation_is_tried() -> None:
    ops = guarded()
    # The description is not empty, and has reads, changes, admin's acts and the audit log.
    assert {op.right for op in ops} >= {Right.READ, Right.SUPERVISE, Right.ADMINISTER, Right.AUDIT}
    assert all(op.method == "GET" for op in ops if not changes(op.right))
    assert all(op.method != "GET" for op in ops if changes(op.right))


async def test_an_auditor_reads_and_is_refused_every_change(daemon: Daemon) -> None:
    before = await daemon.changed()
    for op in guarded():
        status, error = await daemon.ask(op, AUDITOR)
        if changes(op.right):
            assert (status, error) == (403, refusal(AUDITOR, op.right)), op
        else:
            assert status == 200, (op, status, error)
    # Nothing changed, not even an audit entry of a refused act.
    assert await daemon.changed() == before


async def test_each_role_is_refused_exactly_what_it_has_not_the_right_to(
    daemon: Daemon,
) -> None:
    for role in (OFFICER, ADMIN, AUDITOR):
        for op in guarded():
            status, error = await daemon.ask(op, role)
            if may(role, op.right):
                assert status != 401 and not error.startswith("only "), (role, op, error)
            else:
                assert (status, error) == (403, refusal(role, op.right)), (role, op)


async def test_without_a_valid_token_every_guarded_operation_is_401(daemon: Daemon) -> None:
    before = await daemon.changed()
    for op in guarded():
        assert (await daemon.ask(op, None))[0] == 401, op
    assert await daemon.changed() == before


async def test_an_officer_is_refused_an_admins_acts(daemon: Daemon) -> None:
    for path in ("/cells/A1-01/enable", "/prisoners/A1234BC/reinstate"):
        response = await daemon.client.post(path, json={"reason": "r"}, headers=bearer(OFFICER))
        assert response.status == 403
        assert (await response.json())["error"] == (
            "only an admin may do an admin's acts (enable, reinstate, money, set-up): "
            "this token is an officer's"
        )
    response = await daemon.client.get("/audit", headers=bearer(OFFICER))
    assert response.status == 403 and "admin or auditor" in (await response.json())["error"]


# --- auditors' tokens --------------------------------------------------------------------------


def test_the_tokens_file_accepts_auditors_and_no_other_role() -> None:
    tokens, problems = parse_tokens(
        entry("0000000a", "Audrey", "auditor", "a" * 20)
        + entry("0000000b", "Root", "superuser", "b" * 20)
        + "auditor oldstyle "
        + "c" * 20
        + "\n"
    )
    assert sorted(tokens.values(), key=lambda p: p.name) == [
        Principal("Audrey", "auditor"),
        Principal("oldstyle", "auditor"),
    ]
    assert any("unknown role 'superuser' (officer, admin or auditor)" in p for p in problems)


def test_cli_token_add_makes_an_auditors_token(
    cli_env: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "token", "add", "--person", "Audrey Auditor", "--role", "auditor")
    assert status == 0 and "(auditor)" in out
    token = out.split()[-1]
    path = Path(os.environ["CALLCONTROL_BASE_DIR"]) / "var" / "api-tokens"
    assert TokenFile(path).check(token) == Principal("Audrey Auditor", "auditor")
    status, _, err = run(capsys, "token", "add", "--person", "Root", "--role", "root")
    assert status == 2 and "invalid choice" in err
    status, out, _ = run(capsys, "token", "add", "--help")
    assert "auditor" in out


def test_an_auditors_token_never_disables_a_cell_from_the_command_line(
    sqlite_url: str,
    cli_env: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tokens_file: Path,  # noqa: F811
) -> None:
    with tokens_file.open("a") as f:
        f.write(entry("a0d17000", "Audrey", "auditor", TOKENS[AUDITOR]))
    cli_env.setenv("CALLCONTROL_DATABASE_URL", sqlite_url)
    cli_env.setenv("CALLCONTROL_HTTP_TOKEN", TOKENS[AUDITOR])
    assert run(capsys, "cell", "add", "A1-01")[0] == 0
    status, _, err = run(capsys, "cell", "disable", "A1-01", "--reason", "r")
    assert status == 2 and "auditor Audrey may not disable cell A1-01" in err
    assert run(capsys, "cell", "list", "--json")[1].count('"enabled": true') == 1


async def test_each_route_takes_exactly_the_query_parameters_described(daemon: Daemon) -> None:
    """An unknown parameter's 400 names those the route takes: the description's, no more or
    fewer. (/ready and /metrics take none and ignore any: metrics.py's.)"""
    doc = openapi.load()
    tried = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path in ("/ready", "/metrics"):
                continue
            described = set()
            for p in op.get("parameters", []):
                if "$ref" in p:
                    p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                if p["in"] == "query":
                    described.add(p["name"])
            url = Operation(method.upper(), path, Right.READ).url + "?zz_unknown=1"
            response = await daemon.client.request(method, url, headers=bearer(ADMIN))
            assert response.status == 400, (method, path)
            error = (await response.json())["error"]
            found = re.search(r"\(this route takes: (.*)\)$", error)
            assert found, (method, path, error)
            taken = set() if found[1] == "none" else set(found[1].split(", "))
            assert taken == described, (method, path)
            tried += 1
    assert tried >= 20


async def test_each_act_takes_exactly_the_body_fields_described(daemon: Daemon) -> None:
    """An unknown field's 400 names those the act takes: its described body's properties."""
    doc = openapi.load()
    tried = 0
    for path, item in doc["paths"].items():
        op = item.get("post")
        if op is None:
            continue
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        url = Operation("POST", path, Right.READ).url
        response = await daemon.client.post(url, json={"zz_unknown": 1}, headers=bearer(ADMIN))
        assert response.status == 400, path
        error = (await response.json())["error"]
        found = re.search(r"^unknown field\(s\) 'zz_unknown' \(this route takes: (.*)\)$", error)
        assert found, (path, error)
        assert set(found[1].split(", ")) == set(schema["properties"]), path
        tried += 1
    assert tried >= 10
    before = await daemon.changed()
    response = await daemon.client.post(
        "/cells/A1-01/disable", json={"reson": "typo"}, headers=bearer(OFFICER)
    )
    assert response.status == 400 and await daemon.changed() == before
