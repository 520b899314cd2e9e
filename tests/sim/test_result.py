"""From the logs of a run to a CallResult's outcome and figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcontrol.simulator import logs
from callcontrol.simulator.call import judge, observe
from callcontrol.simulator.sipp import RunDir
from tests.sim import samples

CALL = logs.HandsetCall(
    cell="A1-01",
    password="pw",
    number="447700900123",
    pins=("9999", "1234"),
    pin_tries=2,
    dtmf_ms=200,
)


def _run(tmp_path: Path, handset: str, trace: str, called: str | None) -> RunDir:
    run = RunDir(tmp_path, tmp_path)
    run.h("handset_logs.log").write_text(handset)
    run.h("handset_messages.log").write_text(trace)
    if called is not None:
        run.h("called_party_logs.log").write_text(called)
    return run


def _judge(
    run: RunDir, own: bool = True, decision: str | None = None, called_log: Path | None = None
):
    seen = observe(run, samples.CID, called_log, own)
    return seen, judge(CALL, samples.CID, seen, decision)


def test_connected(tmp_path: Path) -> None:
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 100, 200), samples.CALLED_LOG)
    seen, (outcome, setup_ms, post_pin_ms, talk_s, ended_by) = _judge(run)
    assert outcome == "connected"
    assert seen.status == 200
    assert seen.called is not None
    # INVITE at .7536, the called party's 200 at 644.781
    assert setup_ms == pytest.approx(9027.4)
    # second PIN keyed at 642.56 + 2.2 s, the called party's INVITE at 644.775
    assert post_pin_ms == pytest.approx(15.0)
    assert talk_s == pytest.approx(1.091)
    assert ended_by == "handset"


def test_wrong_pin_refused_and_called_party_never_saw_it(tmp_path: Path) -> None:
    handset = samples.HANDSET_LOG.replace("bye_sent", "bye_received")
    run = _run(tmp_path, handset, samples.trace(401, 200), "")
    seen, (outcome, setup_ms, post_pin_ms, talk_s, ended_by) = _judge(run)
    assert (outcome, setup_ms, post_pin_ms, talk_s, ended_by) == (
        "refused",
        None,
        None,
        0.0,
        "network",
    )
    assert seen.called is None


def test_busy_is_refused_but_the_called_party_saw_the_invite(tmp_path: Path) -> None:
    called = (
        f"CCSIM|invite|x| {samples.CID}|1795906644.000000|775000.000000\n"
        f"CCSIM|busy|x| {samples.CID}|1795906644.000000|776000.000000\n"
    )
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 200), called)
    seen, (outcome, setup_ms, _, talk_s, _) = _judge(run)
    assert (outcome, setup_ms, talk_s) == ("refused", None, 0.0)
    assert seen.called is not None and seen.called.busy_at is not None


def test_refused_credentials_fail(tmp_path: Path) -> None:
    handset = f"CCSIM|invite|{samples.CID}|A1-01 1|1.000000|0.000000\n"
    run = _run(tmp_path, handset, samples.trace(401, 401), "")
    seen, (outcome, *_) = _judge(run)
    assert (outcome, seen.status) == ("failed", 401)


def test_no_answer_at_all_fails(tmp_path: Path) -> None:
    run = _run(
        tmp_path, f"CCSIM|invite|{samples.CID}|A1-01 1|1.000000|0.000000\n", samples.trace(), ""
    )
    seen, (outcome, *_) = _judge(run)
    assert (outcome, seen.status, seen.any_response) == ("failed", None, False)


def test_a_refusal_before_answer_with_a_decision_is_refused(tmp_path: Path) -> None:
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 403), "")
    _, (outcome, *_) = _judge(run, decision="refuse")
    assert outcome == "refused"


def test_own_called_party_without_x_cc_call_still_counts(tmp_path: Path) -> None:
    called = samples.CALLED_LOG.replace(f" {samples.CID}", "")
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 200), called)
    seen, (outcome, *_) = _judge(run)
    assert outcome == "connected"
    assert seen.called is not None and seen.called.x_cc_call == ""


def test_a_shared_called_party_log_is_matched_by_x_cc_call(tmp_path: Path) -> None:
    shared = tmp_path / "shared.log"
    shared.write_text(
        "CCSIM|invite|y| someone-else|1795906644.000000|0.000000\n"
        "CCSIM|answered|y| someone-else|1795906644.000000|1000.000000\n" + samples.CALLED_LOG
    )
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 200), None)
    seen, (outcome, *_) = _judge(run, own=False, called_log=shared)
    assert outcome == "connected"
    assert seen.called is not None and seen.called.call_id.startswith("7cd5776b")


@pytest.mark.parametrize(
    ("decision", "status", "outcome"),
    [
        ("allow", 200, "connected"),
        ("refuse", 200, "refused"),
        (None, 200, "refused"),
        (None, 401, "failed"),
    ],
)
def test_without_a_called_party_the_decision_decides(
    tmp_path: Path, decision: str | None, status: int, outcome: str
) -> None:
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, status), None)
    seen, (got, setup_ms, post_pin_ms, talk_s, _) = _judge(run, own=False, decision=decision)
    assert got == outcome
    assert (setup_ms, post_pin_ms, talk_s) == (None, None, None)
    assert not seen.called_observed


def test_a_stray_bye_is_not_a_call_of_the_called_party(tmp_path: Path) -> None:
    # A BYE Asterisk still retransmits for an earlier called party's call starts a "call"
    # without an INVITE in the next called party's log.
    stray = (
        "CCSIM|bye_received|4d021330||1795907260.000000|922036.000000\n"
        "CCSIM|end|4d021330||1795907260.000000|925483.000000\n"
    )
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 200), stray)
    seen, (outcome, *_) = _judge(run)
    assert seen.called is None
    assert outcome == "refused"


async def test_stopping_a_sipp_asks_it_to_end_its_calls_first(tmp_path: Path) -> None:
    import asyncio

    from callcontrol.simulator.call import _stop

    marker = tmp_path / "usr1"
    script = tmp_path / "fake-sipp"
    script.write_text(
        f"#!/bin/sh\ntrap 'touch {marker}; exit 0' USR1\nwhile :; do sleep 0.05; done\n"
    )
    script.chmod(0o755)
    proc = await asyncio.create_subprocess_exec(str(script))
    await asyncio.sleep(0.3)
    assert await _stop(proc) == 0
    assert marker.exists()
