"""A short load through the real lab: `callcontrol-sim load` places 30 calls of every kind at 3
per second with SIPp, and checks each against the daemon's records (decision, billing exactly
once at the tariff, a verified recording for each recordable call, none for privileged ones)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import BIN, E2E, PORTS


def test_thirty_calls_at_three_a_second_are_each_as_expected(e2e: E2E, tmp_path: Path) -> None:
    out = tmp_path / "load"
    proc = subprocess.run(
        [
            str(BIN / "callcontrol-sim"), "load",
            "--config", str(e2e.config),
            "--cells", "40", "--rate", "3", "--calls", "30", "--hold", "20",
            "--port", str(PORTS["pjsip"]), "--called-party-port", str(PORTS["pstn"]),
            "--local-port", "5180", "--media-port", "6100", "--called-party-media-port", "16100",
            "--out", str(out), "--quiet",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, f"{proc.stderr[-2000:]}\n{proc.stdout[-3000:]}"
    figures = json.loads((out / "load.json").read_text())
    assert figures["ok"] is True and figures["mismatches"] == []
    assert figures["attempted"] == figures["placed"] == 30
    assert figures["failed"] == 0
    # Every kind of the default mix came, and ended as its kind must.
    assert set(figures["by_kind"]) == {
        "approved", "unapproved", "wrong_pin", "privileged", "busy", "noanswer", "short_credit"
    }  # fmt: skip
    assert figures["by_kind"]["approved"] == {"connected": 21}
    assert figures["refused_by_reason"] == {
        "not_approved": 2, "wrong_pin": 1, "insufficient_credit": 1
    }  # fmt: skip
    assert figures["recordings"]["stored"] == figures["recordings"]["expected"] == 21
    # 20 s to a landline at 3.1p a minute is 1p: every approved call was charged.
    assert figures["billing"]["charged_calls"] == 21
    assert (out / "load.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "sipp" / "handset_logs.log").exists()
    # The daemon's own records agree with the runner's: one charge per approved call.
    rows = e2e.sql(
        "SELECT count(*) AS n, sum(-e.amount_pence) AS pence FROM ledger_entries e "
        "JOIN calls c ON c.id = e.call_id JOIN call_decisions d ON d.id = c.decision_id "
        "WHERE e.kind = 'charge' AND d.handset LIKE 'LOAD-%'"
    )
    assert (rows[0]["n"], rows[0]["pence"]) == (21, figures["billing"]["charged_pence"])


def test_a_load_that_needs_more_cells_is_refused_before_any_call(e2e: E2E) -> None:
    proc = subprocess.run(
        [
            str(BIN / "callcontrol-sim"), "load", "--config", str(e2e.config),
            "--cells", "3", "--rate", "5", "--calls", "50", "--hold", "30",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "3 cells are too few" in proc.stderr and "--cells" in proc.stderr
