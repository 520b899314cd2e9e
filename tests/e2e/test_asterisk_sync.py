"""Asterisk kept in step without a manual step, and `callcontrol asterisk check`, against the lab.

The daemon (started by the session fixture, `[asterisk] sync_cells` on by default) notices a
change made by the operator's CLI in another process through the cells' version row, rewrites
the cells' PJSIP file and reloads PJSIP: nobody runs `asterisk sync` here.
"""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

_serial = itertools.count(1)
SYNC_WITHIN_S = 5.0
FREE = "+442079460321"


def endpoints(e2e: E2E) -> set[str]:
    out = e2e.lab.rx("pjsip list endpoints")
    return set(re.findall(r"^\s*Endpoint:\s+([^\s/<]+)", out, re.MULTILINE))


def wait_for_endpoint(e2e: E2E, cell: str, present: bool) -> float:
    """Seconds until Asterisk has (or no longer has) the cell's endpoint; fails past the limit."""
    start = time.monotonic()
    while (cell in endpoints(e2e)) != present:
        assert time.monotonic() - start < SYNC_WITHIN_S, (
            f"endpoint {cell} still {'absent' if present else 'present'} after "
            f"{SYNC_WITHIN_S} s:\n" + e2e.daemon.log.read_text()[-2000:]
        )
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_cell_added_calls_within_seconds_and_once_disabled_cannot(e2e: E2E) -> None:
    n = next(_serial)
    cell, prisoner, pin = f"S{n:02d}", f"S{n:04d}", "2468"
    e2e.cli("cell", "add", cell)
    waited = wait_for_endpoint(e2e, cell, present=True)
    e2e.cli(
        "prisoner", "add", prisoner, "--name", f"Sync Prisoner {n}", "--pin-stdin",
        "--cell", cell, stdin=f"{pin}\n",
    )  # fmt: skip
    e2e.cli("number", "allow", FREE)  # free for everyone: no credit or contact to set up
    call = e2e.call(cell, pin, "02079460321", 1)
    assert call["outcome"] == "connected", (waited, call)

    e2e.cli("cell", "disable", cell, "--reason", "sync test")
    wait_for_endpoint(e2e, cell, present=False)
    call = e2e.call(cell, pin, "02079460321", 1)
    # Stopped by Asterisk's digest check: the daemon is never asked, nothing is bridged.
    assert call["outcome"] == "failed" and call["sip_status"] in (401, 403), call
    assert call["called_party_saw_invite"] is False
    rows = e2e.sql("SELECT id FROM call_decisions WHERE sip_call_id = $1", call["sip_call_id"])
    assert rows == []


def check(e2e: E2E) -> tuple[int, list[str]]:
    proc = e2e.cli("asterisk", "check", "--json", check=False)
    return proc.returncode, json.loads(proc.stdout)["differences"]


def test_asterisk_check_says_what_differs(e2e: E2E) -> None:
    assert check(e2e) == (0, [])
    lab = e2e.lab
    try:
        assert "Unloaded" in lab.rx("module unload func_base64.so")
        lab.rx("dialplan remove context cc-listen")
        lab.rx("dialplan set global CC_RING_TIMEOUT 99")
        lab.rx("dialplan set global CC_AGI_URL agi://127.0.0.1:1/not-the-secret")
        status, lines = check(e2e)
        assert status == 1
        assert sorted(lines) == sorted(
            [
                "module func_base64.so: not loaded",
                "dialplan context [cc-listen]: missing",
                "global CC_RING_TIMEOUT: is 99, expected 10",
                "global CC_AGI_URL: does not carry the secret of [agi] secret_file",
            ]
        ), lines
    finally:
        lab.rx("module load func_base64.so")
        lab.rx("dialplan reload")
    assert check(e2e) == (0, [])
