"""The API of a running daemon (`callcontrol run`, a child process on SQLite beside the scripted
AMI peer), with tokens made by `callcontrol token add`: it serves its description, and an
auditor's token reads every described route (answers valid against the description) and is
refused every change, while an officer's approves a contact from the staff's queue."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp

from callcontrol.adapters.http import openapi
from tests.protocol.openapi_check import Described

from .ami_peer import ScriptedAmi
from .daemon_proc import BIN, clean_env, prepare_database, running_daemon, write_config

CELL, PRISONER = "A1-01", "A1234BC"
VALUES = {
    "name": CELL, "number": PRISONER, "contact": "+442079460000", "call_id": "1", "id": "1",
    "recording_id": "1",
}  # fmt: skip
# This database has no calls, so no recording: its audio is 404 (not 403: the auditor may).
# tests/protocol/test_api_roles.py plays a seeded recording with each role.
NOTHING_THERE = {"/recordings/{recording_id}/audio"}


async def cli(config: Path, *argv: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "callcontrol"), *argv, "--config", str(config), "--json",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return dict(json.loads(out))


def url_of(template: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: VALUES[m.group(1)], template)


async def test_a_running_daemon_serves_the_described_api_to_each_role(tmp_path: Path) -> None:
    ami = ScriptedAmi()
    await ami.start()
    config = write_config(tmp_path, ami.port)
    await prepare_database(tmp_path, {CELL: (PRISONER, "1357")})
    await cli(config, "contact", "add", PRISONER, "02079460000", "--kind", "social")
    auditor = await cli(config, "token", "add", "--person", "Audrey", "--role", "auditor")
    officer = await cli(config, "token", "add", "--person", "Olly", "--role", "officer")
    described = Described()
    try:
        async with running_daemon(config) as daemon:
            base = (await daemon.wait_for_line(r"API listening on (http://[\d.:]+)"))[1]
            async with aiohttp.ClientSession(base) as http:
                async with http.get("/openapi.json") as r:
                    assert r.status == 200 and await r.json() == openapi.load()
                as_auditor = {"Authorization": f"Bearer {auditor['token']}"}
                for path, item in described.doc["paths"].items():
                    for method, op in item.items():
                        if "x-callcontrol-right" not in op:
                            continue
                        async with http.request(
                            method, url_of(path), headers=as_auditor, json={"reason": "r"}
                        ) as r:
                            expected = 200 if method == "get" else 403
                            expected = 404 if path in NOTHING_THERE else expected
                            assert r.status == expected, (method, path, await r.text())
                            await described.check(r, method.upper(), path)
                as_officer = {"Authorization": f"Bearer {officer['token']}"}
                approve = "/prisoners/{number}/contacts/{contact}/approve"
                async with http.post(
                    url_of(approve), headers=as_officer, json={"reason": "verified"}
                ) as r:
                    assert r.status == 200, await r.text()
                    assert (await described.check(r, "POST", approve))["status"] == "approved"
                async with http.get("/audit", headers=as_auditor) as r:
                    entries = (await r.json())["entries"]
                assert [(e["actor"], e["action"]) for e in entries][:1] == [
                    ("Olly", "contact_approve")
                ]
    finally:
        await ami.stop()
