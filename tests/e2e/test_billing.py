"""Credit, limits and billing end to end: the real lab, SIPp handsets and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcontrol.domain.tariffs import Rounding, charge_pence
from tests.e2e.conftest import E2E
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

MOBILE = "+447911123456"
MOBILE_RATE = 688  # hundredths of a penny a minute: the default uk_mobile tariff


def settled(e2e: E2E, call: dict[str, object], wait: float = 15.0) -> dict[str, object]:
    """The call's settlement, once the daemon has made it."""
    deadline = time.monotonic() + wait
    while True:
        rows = e2e.sql(
            "SELECT c.id, c.talk_seconds, c.charge_pence, c.settled_at, c.accepted, c.ended_by, "
            "c.dial_status, c.disconnect_cause, r.status AS reservation, r.amount_pence "
            "FROM calls c JOIN call_decisions d ON d.id = c.decision_id "
            "LEFT JOIN reservations r ON r.call_id = c.id WHERE d.sip_call_id = $1",
            call["sip_call_id"],
        )
        if rows and rows[0]["settled_at"] is not None:
            return dict(rows[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"call not settled: {rows}")
        time.sleep(0.25)


def account(e2e: E2E, prisoner: str) -> tuple[int, int]:
    row = e2e.sql(
        "SELECT a.balance_pence, a.reserved_pence FROM accounts a "
        "JOIN prisoners p ON p.id = a.prisoner_id WHERE p.prison_number = $1",
        prisoner,
    )[0]
    return row["balance_pence"], row["reserved_pence"]


def charges(e2e: E2E, call_id: object) -> list[int]:
    rows = e2e.sql("SELECT amount_pence FROM ledger_entries WHERE call_id = $1", call_id)
    return [r["amount_pence"] for r in rows]


def assert_books_balance(e2e: E2E, prisoner: str) -> None:
    """The account agrees with its ledger, and nothing is left reserved."""
    rows = e2e.sql(
        "SELECT a.balance_pence, a.reserved_pence, "
        "(SELECT coalesce(sum(amount_pence), 0) FROM ledger_entries l "
        " WHERE l.prisoner_id = a.prisoner_id) AS ledger, "
        "(SELECT count(*) FROM reservations r WHERE r.prisoner_id = a.prisoner_id "
        " AND r.status = 'open') AS open FROM accounts a JOIN prisoners p "
        "ON p.id = a.prisoner_id WHERE p.prison_number = $1",
        prisoner,
    )
    r = dict(rows[0])
    assert (r["balance_pence"], r["reserved_pence"], r["open"]) == (r["ledger"], 0, 0), r


@pytest.fixture
def restore_daemon(e2e: E2E) -> Iterator[None]:
    """Tests that restart the daemon with other settings put the usual one back."""
    yield
    e2e.daemon.restart()


def test_credit_for_90_seconds_cuts_the_call_with_a_warning_and_bills_the_talk(
    e2e: E2E,
) -> None:
    # 10p at 6.88p/min, per second: 91 s is the most it buys (91 s costs 10.43p -> 10p).
    cell, prisoner, pin = provision(e2e, (MOBILE, "approved"), credit=10)
    log = e2e.lab.inside(e2e.lab.log_dir) / "messages.log"
    log_start = log.stat().st_size if log.exists() else 0
    call = e2e.call(cell, pin, "07911123456", 120, "--timeout", "200")
    assert call["outcome"] == "connected", call
    assert call["ended_by"] == "network", "Asterisk, not the handset, must end the call"
    assert 90.0 <= float(call["talk_s"]) <= 92.0, call  # type: ignore[arg-type]
    s = settled(e2e, call)
    assert s["ended_by"] == "limit" and s["accepted"] is True
    assert 90 <= s["talk_seconds"] <= 91
    expected = charge_pence(MOBILE_RATE, s["talk_seconds"], Rounding.PER_SECOND)
    assert s["charge_pence"] == expected == 10
    assert charges(e2e, s["id"]) == [-10]
    assert account(e2e, prisoner) == (0, 0)
    # The warning: Asterisk played "you have ... seconds" to the handset before the end.
    played = log.read_bytes()[log_start:].decode(errors="replace")
    warnings = [
        line
        for line in played.splitlines()
        if re.search(r"Playing 'vm-youhave", line) and f"PJSIP/{cell}-" in line
    ]
    assert warnings, "no time-limit warning was played to the prisoner"


@pytest.mark.parametrize(("rounding", "expected"), [("per_second", 1), ("per_started_minute", 7)])
def test_a_ten_second_call_bills_as_configured(
    e2e: E2E, restore_daemon: None, rounding: str, expected: int
) -> None:
    e2e.daemon.restart({"CALLCONTROL_BILLING_ROUNDING": rounding})
    cell, prisoner, pin = provision(e2e, (MOBILE, "approved"))
    call = e2e.call(cell, pin, "07911123456", 10)
    assert call["outcome"] == "connected", call
    s = settled(e2e, call)
    assert 9 <= s["talk_seconds"] <= 11, s
    assert s["charge_pence"] == charge_pence(MOBILE_RATE, s["talk_seconds"], Rounding(rounding))
    assert s["charge_pence"] == expected
    assert account(e2e, prisoner) == (500 - expected, 0)
    assert_books_balance(e2e, prisoner)


@pytest.mark.parametrize("mode", ["busy", "noanswer", "decline", "ignore"])
def test_unanswered_and_unaccepted_calls_cost_nothing(e2e: E2E, mode: str) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    # Ignored: the handset holds on longer than the acceptance prompt and its 6 s wait.
    hold = 20 if mode == "ignore" else 3
    call = e2e.call(cell, pin, "02079460000", hold, "--called-party", mode, "--timeout", "90")
    assert call["outcome"] != "connected", call
    s = settled(e2e, call)
    assert s["charge_pence"] == 0 and s["talk_seconds"] == 0, s
    assert s["reservation"] == "settled"
    assert charges(e2e, s["id"]) == []
    assert account(e2e, prisoner) == (500, 0)


def test_no_credit_is_refused_before_anything_rings(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (MOBILE, "approved"), credit=6)  # the first minute is 7p
    call = e2e.call(cell, pin, "07911123456")
    assert (call["outcome"], call["reason"]) == ("refused", "insufficient_credit"), call
    assert call["called_party_saw_invite"] is False


def test_outside_the_calling_window_is_refused(e2e: E2E, restore_daemon: None) -> None:
    e2e.daemon.restart({"CALLCONTROL_BILLING_WINDOWS": "00:00-00:01"})
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "02079460000")
    assert (call["outcome"], call["reason"]) == ("refused", "outside_hours"), call
    assert call["called_party_saw_invite"] is False


def test_daily_call_cap_reached_is_refused(e2e: E2E, restore_daemon: None) -> None:
    e2e.daemon.restart({"CALLCONTROL_BILLING_MAX_CALLS_PER_DAY": "1"})
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    assert e2e.call(cell, pin, "02079460000", 1)["outcome"] == "connected"
    call = e2e.call(cell, pin, "02079460000", 1)
    assert (call["outcome"], call["reason"]) == ("refused", "daily_calls_cap"), call


def test_daemon_killed_mid_call_bills_once_after_restart(e2e: E2E) -> None:
    """The call goes on without the daemon; its end is settled from the journal, once."""
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(e2e.call(cell, pin, "02079460000", 12)))
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait for the bridge
        rows = e2e.sql(
            "SELECT c.id FROM calls c JOIN prisoners p ON p.id = c.prisoner_id "
            "WHERE p.prison_number = $1",
            prisoner,
        )
        if rows:
            break
        time.sleep(0.2)
    time.sleep(4)
    e2e.daemon.stop(signal.SIGKILL)
    thread.join(timeout=60)
    assert result.get("outcome") == "connected", result  # the call survived the daemon
    e2e.daemon.start()
    s = settled(e2e, result, wait=20)
    assert 11 <= s["talk_seconds"] <= 13, s
    assert s["charge_pence"] == charge_pence(310, s["talk_seconds"], Rounding.PER_SECOND)
    assert charges(e2e, s["id"]) == [-s["charge_pence"]]
    # Restarting again settles nothing twice.
    e2e.daemon.restart()
    time.sleep(2)
    assert charges(e2e, s["id"]) == [-s["charge_pence"]]
    assert_books_balance(e2e, prisoner)


def test_journal_rotated_while_the_daemon_is_down_loses_nothing(e2e: E2E) -> None:
    """The acceptance is in the journal; the daemon dies; the journal is moved aside mid-call;
    the end goes to the new journal. The restarted daemon reads the rest of the moved file,
    then the new one, and bills the call once, for its talk."""
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(e2e.call(cell, pin, "02079460000", 12)))
    thread.start()
    journal, deadline, uniqueid = e2e.lab.journal_path, time.monotonic() + 20, None
    while time.monotonic() < deadline:  # wait for the acceptance in the journal
        rows = e2e.sql(
            "SELECT c.uniqueid FROM calls c JOIN prisoners p ON p.id = c.prisoner_id "
            "WHERE p.prison_number = $1",
            prisoner,
        )
        if rows and f"accepted|{rows[0]['uniqueid']}|" in journal.read_text():
            uniqueid = rows[0]["uniqueid"]
            break
        time.sleep(0.2)
    assert uniqueid is not None
    e2e.daemon.stop(signal.SIGKILL)
    rotated = e2e.cli("journal", "rotate", "--json").stdout
    moved = Path(re.search(r'"rotated": "([^"]+)"', rotated)[1])  # type: ignore[index]
    assert f"accepted|{uniqueid}|" in moved.read_text()
    thread.join(timeout=60)
    assert result.get("outcome") == "connected", result
    assert f"ended|{uniqueid}|" in journal.read_text()  # in the new journal only
    assert f"ended|{uniqueid}|" not in moved.read_text()
    e2e.daemon.start()
    s = settled(e2e, result, wait=20)
    assert 11 <= s["talk_seconds"] <= 13, s
    assert charges(e2e, s["id"]) == [-s["charge_pence"]] and s["charge_pence"] > 0
    assert_books_balance(e2e, prisoner)


def test_an_acceptance_only_in_a_moved_journal_is_still_read(e2e: E2E) -> None:
    """The daemon dies before the called party accepts; the acceptance is written, the journal
    moved aside, and Asterisk killed (no end is ever written). The restarted daemon still learns
    the acceptance, from the moved file: the call is settled as accepted (at no charge, since
    nobody saw it end), not as a call nobody answered."""
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    journal = e2e.lab.journal_path

    def call() -> None:  # the handset never hears the end: Asterisk is killed under it
        with contextlib.suppress(AssertionError):
            e2e.call(cell, pin, "02079460000", 30, "--timeout", "45")

    thread = threading.Thread(target=call)
    thread.start()
    try:
        uniqueid = None
        deadline = time.monotonic() + 20
        while uniqueid is None and time.monotonic() < deadline:  # the decision, then at once:
            rows = e2e.sql(
                "SELECT c.uniqueid FROM calls c JOIN prisoners p ON p.id = c.prisoner_id "
                "WHERE p.prison_number = $1",
                prisoner,
            )
            uniqueid = rows[0]["uniqueid"] if rows else None
            time.sleep(0.05)
        e2e.daemon.stop(signal.SIGKILL)
        assert uniqueid is not None
        assert f"accepted|{uniqueid}|" not in journal.read_text()  # the daemon never saw it
        deadline = time.monotonic() + 20
        while f"accepted|{uniqueid}|" not in journal.read_text():
            assert time.monotonic() < deadline, "the called party never accepted"
            time.sleep(0.2)
        moved = Path(json.loads(e2e.cli("journal", "rotate", "--json").stdout)["rotated"])
        asterisk = e2e.lab.pid()
        assert asterisk is not None
        os.kill(asterisk, signal.SIGKILL)  # the call is lost: no end line anywhere
    finally:
        thread.join(timeout=90)
    e2e.lab_cli("up")
    e2e.cli("asterisk", "sync")
    assert f"ended|{uniqueid}|" not in journal.read_text() + moved.read_text()
    e2e.daemon.start()
    deadline = time.monotonic() + 30
    while not (rows := e2e.sql(
        "SELECT id, accepted, charge_pence, ended_by FROM calls WHERE uniqueid = $1 "
        "AND settled_at IS NOT NULL", uniqueid,
    )):  # fmt: skip
        assert time.monotonic() < deadline, "the call was not settled"
        time.sleep(0.25)
    s = dict(rows[0])
    assert s["accepted"] is True and s["charge_pence"] == 0, s
    assert charges(e2e, s["id"]) == []
    assert_books_balance(e2e, prisoner)


def test_asterisk_restarted_mid_call_bills_once(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.update(e2e.call(cell, pin, "02079460000", 30, "--timeout", "90"))
    )
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = e2e.sql(
            "SELECT c.id FROM calls c JOIN prisoners p ON p.id = c.prisoner_id "
            "WHERE p.prison_number = $1",
            prisoner,
        )
        if rows:
            break
        time.sleep(0.2)
    time.sleep(5)
    e2e.lab_cli("down")
    e2e.lab_cli("up")
    e2e.cli("asterisk", "sync")
    thread.join(timeout=90)
    s = settled(e2e, result, wait=30)
    # Dropped by the system within the free time: nothing charged, nothing left reserved.
    assert s["ended_by"] == "system" and s["accepted"] is True, s
    assert 3 <= s["talk_seconds"] < 60, s
    assert s["charge_pence"] == 0 and charges(e2e, s["id"]) == []
    assert_books_balance(e2e, prisoner)


def test_the_called_party_hanging_up_is_billed_for_the_talk(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (MOBILE, "approved"))
    call = e2e.call(cell, pin, "07911123456", 30, "--called-party-hangup", "12")
    assert call["outcome"] == "connected" and call["ended_by"] == "network", call
    s = settled(e2e, call)
    assert s["ended_by"] == "called", s
    assert 8 <= s["talk_seconds"] <= 12, s
    assert s["charge_pence"] == charge_pence(MOBILE_RATE, s["talk_seconds"], Rounding.PER_SECOND)
    assert_books_balance(e2e, prisoner)


def test_the_strictest_limit_sets_the_time_limit(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    e2e.cli("prisoner", "limit", prisoner, "--max-call-minutes", "10")
    e2e.cli("contact", "limit", prisoner, "02079460000", "--max-call-minutes", "2")
    call = e2e.call(cell, pin, "02079460000", 1)
    assert call["outcome"] == "connected", call
    rows = e2e.sql(
        "SELECT r.max_seconds, r.amount_pence FROM reservations r JOIN calls c "
        "ON c.id = r.call_id JOIN call_decisions d ON d.id = c.decision_id "
        "WHERE d.sip_call_id = $1",
        call["sip_call_id"],
    )
    assert (rows[0]["max_seconds"], rows[0]["amount_pence"]) == (120, 6)  # 3.1p/min x 2
