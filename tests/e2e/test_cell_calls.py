"""Calls from simulated cell handsets through the real Asterisk lab, decided by the daemon."""

from __future__ import annotations

import hashlib
import itertools
import json
import time

import pytest

from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

LONDON = "+442079460000"
_serial = itertools.count(1)


def provision(e2e: E2E, *contacts: tuple[str, str], credit: int = 500) -> tuple[str, str, str]:
    """A fresh cell with one prisoner (PIN 1357, ``credit`` pence) and the given
    (number, status) contacts."""
    n = next(_serial)
    cell, prisoner, pin = f"T{n:02d}", f"P{n:04d}", "1357"
    e2e.cli("cell", "add", cell)
    e2e.cli(
        "prisoner", "add", prisoner, "--name", f"Test Prisoner {n}", "--pin-stdin", "--cell", cell,
        stdin=f"{pin}\n",
    )  # fmt: skip
    if credit:
        e2e.cli("account", "topup", prisoner, str(credit), "--reference", f"first-{prisoner}")
    for number, status in contacts:
        e2e.cli("contact", "add", prisoner, number, "--kind", "social")
        if status == "approved":
            e2e.cli("contact", "approve", prisoner, number)
    e2e.cli("asterisk", "sync")
    return cell, prisoner, pin


def decision(e2e: E2E, call: dict[str, object]) -> dict[str, object]:
    rows = e2e.sql(
        "SELECT outcome, reason, number, dialled, handset, prisoner_id, privileged "
        "FROM call_decisions WHERE sip_call_id = $1 ORDER BY id",
        call["sip_call_id"],
    )
    assert len(rows) == 1, f"expected one decision for {call['sip_call_id']}, got {rows}"
    return dict(rows[0])


def test_approved_number_connects_and_the_called_party_gets_the_call(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "02079460000", 2)
    assert call["outcome"] == "connected", call
    assert call["called_party_saw_invite"] is True
    assert call["talk_s"] is not None and 1.0 <= float(call["talk_s"]) <= 4.0
    d = decision(e2e, call)
    assert (d["outcome"], d["reason"], d["number"]) == ("allow", "approved_contact", LONDON)
    assert d["dialled"] == "02079460000" and d["handset"] == cell
    # The daemon follows the call over AMI and closes it when Asterisk hangs up.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = e2e.sql(
            "SELECT c.ended_at, c.hangup_cause FROM calls c JOIN call_decisions d "
            "ON d.id = c.decision_id WHERE d.sip_call_id = $1",
            call["sip_call_id"],
        )
        if rows and rows[0]["ended_at"] is not None:
            break
        time.sleep(0.2)
    assert rows and rows[0]["ended_at"] is not None, "call never closed from AMI events"


def test_a_handset_authenticates_by_digest_against_the_stored_hash_alone(e2e: E2E) -> None:
    """Asterisk knows only MD5(user:realm:password) (md5_cred): the right password connects,
    a wrong one never reaches the dialplan; neither the database nor Asterisk's files hold
    the password."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    known = json.loads((e2e.config.parent / "var" / "lab-handsets.json").read_text())
    password = known[cell]
    [row] = e2e.sql("SELECT * FROM cells WHERE name = $1", cell)
    assert "sip_password" not in row.keys()
    expected = hashlib.md5(f"{cell}:callcontrol:{password}".encode()).hexdigest()
    assert (row["sip_realm"], row["sip_md5_cred"]) == ("callcontrol", expected)
    conf = e2e.lab.cells_conf_path.read_text()
    auth = conf.split(f"[{cell}-auth](cell-auth)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert auth == [f"username = {cell}", "realm = callcontrol", f"md5_cred = {expected}"]
    assert password not in conf
    assert "auth_type = md5" in (e2e.lab.inside(e2e.lab.conf_dir) / "pjsip.conf").read_text()

    call = e2e.call(cell, pin, "02079460000", 1)
    assert call["outcome"] == "connected", call
    wrong = e2e.call(cell, pin, "02079460000", 1, "--password", "Wrong-password-0000")
    assert wrong["outcome"] != "connected" and wrong["called_party_saw_invite"] is False, wrong
    # Refused by Asterisk's digest check, before the dialplan: the daemon was never asked.
    rows = e2e.sql("SELECT id FROM call_decisions WHERE sip_call_id = $1", wrong["sip_call_id"])
    assert rows == []


def test_unapproved_number_is_refused_and_never_rings(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "02079460555")
    assert call["outcome"] == "refused", call
    assert call["reason"] == "not_approved"
    assert call["called_party_saw_invite"] is False


def test_pending_contact_is_refused(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, ("+447911123456", "pending"))
    call = e2e.call(cell, pin, "07911123456")
    assert (call["outcome"], call["reason"]) == ("refused", "contact_pending")
    assert call["called_party_saw_invite"] is False


def test_wrong_pin_three_times_is_refused(e2e: E2E) -> None:
    cell, _, _ = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, "2468", "02079460000", 2, "--pin-tries", "3")
    assert (call["outcome"], call["reason"]) == ("refused", "wrong_pin"), call
    assert call["called_party_saw_invite"] is False
    failures = e2e.sql(
        "SELECT count(*) AS n FROM pin_failures f JOIN cells c ON c.id = f.cell_id "
        "WHERE c.name = $1",
        cell,
    )
    assert failures[0]["n"] == 3  # counted against the handset


def test_disabled_handset_is_refused_then_unknown_to_asterisk_after_sync(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    # The daemon's own sync off, to hold the moment before PJSIP is reloaded: Asterisk
    # still knows the endpoint, and the decision refuses it.
    e2e.daemon.restart({"CALLCONTROL_ASTERISK_SYNC_CELLS": "false"})
    try:
        e2e.cli("cell", "disable", cell, "--reason", "phone misused")
        call = e2e.call(cell, pin, "02079460000")
        assert (call["outcome"], call["reason"]) == ("refused", "handset_disabled"), call
        assert call["called_party_saw_invite"] is False
        # After the sync the handset cannot even place a call.
        e2e.cli("asterisk", "sync")
        call = e2e.call(cell, pin, "02079460000")
        assert call["outcome"] == "failed", call
        assert call["sip_status"] in (401, 403, 404), call
        assert call["called_party_saw_invite"] is False
        # Enabled again, it works again.
        e2e.cli("cell", "enable", cell)
        e2e.cli("asterisk", "sync")
        assert e2e.call(cell, pin, "02079460000")["outcome"] == "connected"
    finally:
        e2e.daemon.restart()


def test_suspended_prisoner_is_refused(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    e2e.cli("prisoner", "suspend", prisoner, "--reason", "adjudication")
    call = e2e.call(cell, pin, "02079460000")
    assert (call["outcome"], call["reason"]) == ("refused", "prisoner_suspended"), call
    assert call["called_party_saw_invite"] is False


@pytest.mark.parametrize("dialled", ["02079460000", "+442079460000", "00442079460000"])
def test_one_approved_number_in_three_formats_connects(e2e: E2E, dialled: str) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, dialled, 1)
    assert call["outcome"] == "connected", call
    assert decision(e2e, call)["number"] == LONDON


def test_a_number_with_dashes_is_refused_by_the_dialplan(e2e: E2E) -> None:
    """Only digits, +, * and # pass [cells] (issue 9): "020-7946-0000" is refused before the
    daemon is asked (no PIN prompt), and stored as dialled."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "020-7946-0000", 1)
    assert (call["outcome"], call["reason"]) == ("refused", "invalid_number"), call
    assert call["called_party_saw_invite"] is False
    assert decision(e2e, call)["dialled"] == "020-7946-0000"


def test_globally_allowed_privileged_number_connects(e2e: E2E) -> None:
    cell, _, pin = provision(e2e)
    e2e.cli("number", "allow", "116123", "--privileged", "--label", "Samaritans")
    call = e2e.call(cell, pin, "116123", 1)
    assert call["outcome"] == "connected", call
    d = decision(e2e, call)
    assert (d["reason"], d["number"], d["privileged"]) == ("global_allowed", "116123", True)


def test_emergency_code_is_refused_with_its_own_reason(e2e: E2E) -> None:
    cell, _, pin = provision(e2e)
    call = e2e.call(cell, pin, "999")
    assert (call["outcome"], call["reason"]) == ("refused", "emergency_number")
    assert call["called_party_saw_invite"] is False


@pytest.mark.parametrize("keyed", ["13570", "135"])
def test_a_pin_is_exactly_the_keys_keyed(e2e: E2E, keyed: str) -> None:
    """The PIN is 1357: one key more or one fewer is a wrong PIN (the simulator ends each entry
    with "#"), never a PIN read to four digits and the call bridged."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    assert pin == "1357"
    call = e2e.call(cell, keyed, "02079460000", 2, "--pin-tries", "3")
    assert (call["outcome"], call["reason"]) == ("refused", "wrong_pin"), call
    assert call["called_party_saw_invite"] is False
