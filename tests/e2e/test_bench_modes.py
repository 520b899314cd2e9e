"""The benchmark's ways to decide a handset call, on the real lab: static (Asterisk alone) and
pyst2 (a classic per-call AGI script in the Asterisk root), beside the daemon's.

The lab is the session's: every test here puts the daemon's mode back when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callcontrol.domain.tariffs import Rounding, charge_pence
from callcontrol_lab.bench import pyst2_root
from callcontrol_lab.bench.lab_modes import switch_mode
from tests.e2e.conftest import E2E
from tests.e2e.test_billing import MOBILE, MOBILE_RATE, charges, settled
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pyst2_agi(e2e: E2E) -> str:
    """The pyst2 script, made runnable by the lab's Asterisk (once per session: idempotent)."""
    started = time.monotonic()
    path = pyst2_root.prepare(e2e.lab, timings=True)
    print(f"\npyst2 script prepared in {time.monotonic() - started:.1f} s: {path}")
    return path


@pytest.fixture
def mode(e2e: E2E, pyst2_agi: str) -> Iterator[Callable[[str], None]]:
    """Switch the session's lab to a mode; the daemon's is put back whatever happens."""
    try:
        yield lambda name: switch_mode(e2e.lab, name, pyst2_agi=pyst2_agi)
    finally:
        switch_mode(e2e.lab, "daemon")


def decisions(e2e: E2E, call: dict[str, object]) -> list[dict[str, object]]:
    rows = e2e.sql(
        "SELECT outcome, reason, number, uniqueid, decision_ms FROM call_decisions "
        "WHERE sip_call_id = $1 ORDER BY id",
        call["sip_call_id"],
    )
    return [dict(r) for r in rows]


def daemon_decided(e2e: E2E, cell: str) -> bool:
    """Whether the daemon logged a decision on a call from this cell."""
    return f"call from handset {cell} " in e2e.daemon.log.read_text()


def script_timings(e2e: E2E) -> dict[str, str]:
    """The pyst2 script's own lines (pyst2_agi.timing_line), by uniqueid."""
    path = pyst2_root.timings_file(e2e.lab)
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.split()[0]: line for line in lines}


def test_static_mode_bridges_without_asking_anyone(e2e: E2E, mode: Callable[[str], None]) -> None:
    # No contact, a wrong PIN: the daemon would refuse; static asks nobody.
    cell, _, _ = provision(e2e)
    spool: Path = e2e.lab.recordings_spool
    before = set(spool.glob("*.raw"))
    journal_before = e2e.lab.journal_path.read_text().count("accepted|")
    mode("static")
    try:
        call = e2e.call(cell, "0000", "02079460555", 2)
        assert call["outcome"] == "connected", call
        assert call["called_party_saw_invite"] is True and call["decision"] is None
        assert decisions(e2e, call) == []
        assert not daemon_decided(e2e, cell)
        # Bridged as an allowed call is: accepted (in the journal) and recorded.
        assert e2e.lab.journal_path.read_text().count("accepted|") == journal_before + 1
        recorded = set(spool.glob("*.raw")) - before
        assert len(recorded) == 1 and next(iter(recorded)).stat().st_size > 16000
    finally:
        # No call of the daemon's owns that audio: left there, it would be reported as lost.
        for path in set(spool.glob("*.raw")) - before:
            path.unlink()


def test_pyst2_mode_decides_in_the_script_and_the_daemon_settles_once(
    e2e: E2E, mode: Callable[[str], None]
) -> None:
    cell, _, pin = provision(e2e, (MOBILE, "approved"))
    mode("pyst2")
    call = e2e.call(cell, pin, "07911123456", 8)
    assert call["outcome"] == "connected", call
    assert (call["decision"], call["reason"]) == ("allow", "approved_contact")
    [d] = decisions(e2e, call)
    assert (d["outcome"], d["number"]) == ("allow", MOBILE)
    # Decided by the script (its timing line names the call), not by the daemon.
    assert str(d["uniqueid"]) in script_timings(e2e)
    assert not daemon_decided(e2e, cell)
    # The hangup handler still reported the end to the daemon, which settled it once.
    s = settled(e2e, call)
    assert s["accepted"] is True and s["reservation"] == "settled"
    expected = charge_pence(MOBILE_RATE, s["talk_seconds"], Rounding.PER_SECOND)
    assert s["charge_pence"] == expected > 0
    assert charges(e2e, s["id"]) == [-expected]
    time.sleep(4.0)  # a second settlement (AMI, then the journal) would come within 3 s
    assert charges(e2e, s["id"]) == [-expected]


def test_pyst2_mode_refuses_an_unapproved_number_before_it_rings(
    e2e: E2E, mode: Callable[[str], None]
) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    mode("pyst2")
    call = e2e.call(cell, pin, "02079460555")
    assert (call["outcome"], call["reason"]) == ("refused", "not_approved"), call
    assert call["called_party_saw_invite"] is False
    [d] = decisions(e2e, call)
    assert str(d["uniqueid"]) in script_timings(e2e)
    assert not daemon_decided(e2e, cell)


def test_pyst2_mode_refuses_a_wrong_pin(e2e: E2E, mode: Callable[[str], None]) -> None:
    cell, _, _ = provision(e2e, (LONDON, "approved"))
    mode("pyst2")
    call = e2e.call(cell, "2468", "02079460000", 2, "--pin-tries", "3")
    assert (call["outcome"], call["reason"]) == ("refused", "wrong_pin"), call
    assert call["called_party_saw_invite"] is False
    failures = e2e.sql(
        "SELECT count(*) AS n FROM pin_failures f JOIN cells c ON c.id = f.cell_id "
        "WHERE c.name = $1",
        cell,
    )
    assert failures[0]["n"] == 3  # three prompts, as the daemon gives


def test_back_in_daemon_mode_the_daemon_decides_again(
    e2e: E2E, mode: Callable[[str], None]
) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    mode("pyst2")
    mode("daemon")
    call = e2e.call(cell, pin, "02079460000", 1)
    assert call["outcome"] == "connected", call
    assert daemon_decided(e2e, cell)
