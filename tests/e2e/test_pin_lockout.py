"""PIN lockouts through the real lab: a locked handset tells nothing about the PIN keyed, and
guessing on one handset does not block a prisoner's calls from another."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from callcontrol_lab.simulator import logs
from tests.e2e.conftest import E2E
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

DIAL = "02079460000"
WRONG = "2468"
ROUNDS = 6  # right and wrong PINs, alternated, while the handset is locked
# The refusal after the PIN, right vs wrong, as the handset's SIPp measures it (last PIN keyed
# -> Asterisk's BYE). Before, a wrong PIN got the retry prompt and waited for the next one:
# seconds apart. The issue's own bound (50 ms at p99) is a speed goal, printed here, not timed.
MEDIAN_GAP_S = 0.25


def _lock(e2e: E2E, cell: str) -> None:
    first = e2e.call(cell, WRONG, DIAL, 2, "--pin-tries", "3")
    assert (first["outcome"], first["reason"]) == ("refused", "wrong_pin"), first
    second = e2e.call(cell, WRONG, DIAL, 2, "--pin-tries", "2")  # the 5th wrong PIN locks
    assert (second["outcome"], second["reason"]) == ("refused", "pin_locked"), second


def _refusal_s(call: dict[str, object]) -> float:
    """Last PIN keyed -> the network's BYE, from the handset's SIPp log of the call."""
    run = Path(str(call["run_dir"]))
    events = logs.parse_events((run / "handset_logs.log").read_text())
    handset = logs.handset_calls(events)[str(call["sip_call_id"])]
    assert handset.pin_at and handset.bye_received_at is not None, handset
    return handset.bye_received_at - handset.pin_at[-1]


def _failures(e2e: E2E, cell: str) -> int:
    rows = e2e.sql(
        "SELECT count(*) AS n FROM pin_failures f JOIN cells c ON c.id = f.cell_id "
        "WHERE c.name = $1",
        cell,
    )
    return int(rows[0]["n"])


def test_a_locked_handset_refuses_right_and_wrong_pins_alike(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    _lock(e2e, cell)
    [alert] = [a for a in json.loads(e2e.cli("alerts", "--json").stdout) if a["cell"] == cell]
    assert (alert["status"], alert["failures"], alert["level"]) == ("in force", 5, 1)
    audit = e2e.sql(
        "SELECT actor, role FROM audit_log WHERE action = 'pin_lockout' AND target = $1",
        f"cell:{cell}",
    )
    assert [(a["actor"], a["role"]) for a in audit] == [("callcontrol", "system")]

    seen: dict[str, list[tuple[object, ...]]] = {pin: [], WRONG: []}
    times: dict[str, list[float]] = {pin: [], WRONG: []}
    for _ in range(ROUNDS):
        for keyed in (pin, WRONG):
            call = e2e.call(cell, keyed, DIAL, 2, "--keep")
            seen[keyed].append(
                (
                    call["outcome"],
                    call["reason"],
                    call["decision"],
                    call["sip_status"],
                    call["ended_by"],
                    call["called_party_saw_invite"],
                    tuple(call["errors"]),  # type: ignore[call-overload]
                )
            )
            times[keyed].append(_refusal_s(call))
    assert set(seen[pin]) == set(seen[WRONG]), seen  # SIPp's complaints included
    [facts] = set(seen[pin])
    assert facts[:6] == ("refused", "pin_locked", "refuse", 200, "network", False), facts
    assert _failures(e2e, cell) == 5  # nothing keyed while locked was even counted
    right, wrong = statistics.median(times[pin]), statistics.median(times[WRONG])
    print(
        f"\nrefusal after the PIN while locked, over {ROUNDS} calls each: right PIN median "
        f"{right * 1000:.0f} ms (max {max(times[pin]) * 1000:.0f}), wrong PIN median "
        f"{wrong * 1000:.0f} ms (max {max(times[WRONG]) * 1000:.0f})"
    )
    assert abs(right - wrong) < MEDIAN_GAP_S, times

    e2e.cli("cell", "unlock", cell, "--reason", "e2e: staff spoke to the cell")
    assert e2e.call(cell, pin, DIAL, 1)["outcome"] == "connected"


def test_guessing_on_one_handset_does_not_block_the_prisoner_elsewhere(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    _lock(e2e, cell)
    assert e2e.call(cell, pin, DIAL, 1)["reason"] == "pin_locked"
    other = f"{cell}X"
    e2e.cli("cell", "add", other)
    e2e.cli("asterisk", "sync")
    e2e.cli("prisoner", "move", prisoner, "--cell", other)
    call = e2e.call(other, pin, DIAL, 1)
    assert call["outcome"] == "connected", call
