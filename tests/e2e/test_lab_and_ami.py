"""The lab's lifecycle, and the daemon's AMI session across a restart of Asterisk."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.conftest import E2E, LAB_NAME
from tests.e2e.test_cell_calls import LONDON, decision, provision

pytestmark = pytest.mark.e2e


def lab_processes(e2e: E2E) -> list[str]:
    """Asterisk processes of this lab (by its configuration folder)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [
        line
        for line in out.splitlines()
        if "asterisk" in line and e2e.lab.conf_dir in line and "ps -eo" not in line
    ]


def test_lab_up_is_idempotent_and_status_says_what_runs(e2e: E2E) -> None:
    before = json.loads(e2e.lab_cli("status", "--json").stdout)
    assert before["running"] is True and before["name"] == LAB_NAME
    again = json.loads(e2e.lab_cli("up", "--json").stdout)
    assert again["pid"] == before["pid"], "a second `lab up` must not start another Asterisk"
    assert len(lab_processes(e2e)) == 1


def test_daemon_reconnects_to_ami_after_asterisk_restarts(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    stopped = e2e.lab_cli("down")
    assert "stopped" in stopped.stdout
    assert lab_processes(e2e) == [], "`lab down` left an Asterisk process behind"
    status = e2e.lab_cli("status", check=False)
    assert status.returncode == 1 and "not running" in status.stdout
    e2e.lab_cli("up")
    e2e.cli("asterisk", "sync")
    # The daemon logs in again by itself; a call is then followed to its end over AMI.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if e2e.daemon.log.read_text().count("AMI: connected") >= 2:
            break
        time.sleep(0.2)
    assert e2e.daemon.log.read_text().count("AMI: connected") >= 2, "no AMI reconnect"
    call = e2e.call(cell, pin, "02079460000", 1)
    assert call["outcome"] == "connected", call
    assert decision(e2e, call)["outcome"] == "allow"
    deadline = time.monotonic() + 5
    rows: list = []
    while time.monotonic() < deadline:
        rows = e2e.sql(
            "SELECT c.ended_at FROM calls c JOIN call_decisions d ON d.id = c.decision_id "
            "WHERE d.sip_call_id = $1",
            call["sip_call_id"],
        )
        if rows and rows[0]["ended_at"] is not None:
            break
        time.sleep(0.2)
    assert rows and rows[0]["ended_at"] is not None, "call not closed after the AMI reconnect"
