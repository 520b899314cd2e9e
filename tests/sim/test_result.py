"""From the logs of a run to a CallResult's outcome and figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcontrol_lab.simulator import logs
from callcontrol_lab.simulator.call import CallResult, observe
from callcontrol_lab.simulator.sipp import RunDir
from callcontrol_lab.simulator.verdict import ACCEPT_SETTLE_S, Observed, Verdict, bridged, judge
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
    run: RunDir,
    own: bool = True,
    decision: str | None = None,
    called_log: Path | None = None,
    mode: str | None = None,
) -> tuple[Observed, tuple[str, float | None, float | None, float | None, str | None]]:
    seen = observe(run, samples.CID, called_log, own)
    v = judge(CALL, samples.CID, seen, decision, mode=mode)
    return seen, (v.outcome, v.setup_ms, v.post_pin_ms, v.talk_s, v.ended_by)


def test_connected(tmp_path: Path) -> None:
    run = _run(tmp_path, samples.HANDSET_LOG, samples.trace(401, 100, 200), samples.CALLED_LOG)
    seen, (outcome, setup_ms, post_pin_ms, talk_s, ended_by) = _judge(run)
    assert outcome == "connected"
    assert seen.status == 200
    assert seen.called is not None
    # INVITE at .7536, the called party's 200 at 644.781
    assert setup_ms == pytest.approx(9027.4)
    # second PIN keyed at 642.56, its "#" ends 2.6 s later (this log was recorded when a PIN
    # ended at its fourth digit, 400 ms sooner), the called party's INVITE at 644.775
    assert post_pin_ms == pytest.approx(-385.0)
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

    from callcontrol_lab.simulator.processes import stop

    marker = tmp_path / "usr1"
    script = tmp_path / "fake-sipp"
    script.write_text(
        f"#!/bin/sh\ntrap 'touch {marker}; exit 0' USR1\nwhile :; do sleep 0.05; done\n"
    )
    script.chmod(0o755)
    proc = await asyncio.create_subprocess_exec(str(script))
    await asyncio.sleep(0.3)
    assert await stop(proc) == 0
    assert marker.exists()


# --- the called party's acceptance (Dial's U() gosub) ---

ONE_TRY = logs.HandsetCall(
    cell="A1-01", password="pw", number="447700900123", pins=("1234",), dtmf_ms=200
)


def _verdict(
    tmp_path: Path, case: tuple[str, str], cid: str, mode: str | None, own: bool = True
) -> Verdict:
    handset, called = case
    run = _run(tmp_path, handset, samples.trace(401, 200, call_id=cid), called)
    seen = observe(run, cid, None if own else run.h("called_party_logs.log"), own)
    return judge(ONE_TRY, cid, seen, None, mode=mode)


def test_accepted_talk_counts_from_the_accept(tmp_path: Path) -> None:
    v = _verdict(tmp_path, samples.ACCEPT_LOGS, samples.ACCEPT_CID, "accept")
    assert v.outcome == "connected"
    # dtmf at 533.2267 + 1.0 s of keying (400 + 3 x 200 ms), the 200 OK at 531.7205
    assert v.accepted_at_ms == pytest.approx(2506.2)
    assert v.talk_s == pytest.approx(5.054)  # the accept to the BYE: the handset held 5 s
    assert v.answered_talk_s == pytest.approx(7.56)
    assert v.ended_by == "handset"
    assert v.setup_ms == pytest.approx(3729.6)


def test_declined_is_not_accepted(tmp_path: Path) -> None:
    v = _verdict(tmp_path, samples.DECLINE_LOGS, samples.DECLINE_CID, "decline")
    assert (v.outcome, v.talk_s, v.accepted_at_ms, v.ended_by) == (
        "not_accepted",
        0.0,
        None,
        "network",
    )
    assert v.answered_talk_s == pytest.approx(2.52)
    assert v.setup_ms is not None


def test_ignored_is_not_accepted(tmp_path: Path) -> None:
    v = _verdict(tmp_path, samples.IGNORE_LOGS, samples.IGNORE_CID, "ignore")
    assert (v.outcome, v.talk_s, v.accepted_at_ms, v.ended_by) == (
        "not_accepted",
        0.0,
        None,
        "network",
    )
    assert v.answered_talk_s == pytest.approx(10.445)


def test_ignored_while_the_handset_hung_up_is_not_accepted(tmp_path: Path) -> None:
    # Asterisk did not pass the handset's hangup on during the gosub: no sign of a bridge.
    v = _verdict(tmp_path, samples.IGNORE_SHORT_LOGS, samples.IGNORE_SHORT_CID, "ignore")
    assert (v.outcome, v.talk_s, v.answered_talk_s, v.ended_by) == (
        "not_accepted",
        0.0,
        0.0,
        "handset",
    )


def test_answer_mode_ignores_acceptance(tmp_path: Path) -> None:
    # answer is for dialplans without acceptance: answered means connected, as before.
    for mode in ("answer", None):
        v = _verdict(tmp_path, samples.IGNORE_LOGS, samples.IGNORE_CID, mode)
        assert (v.outcome, v.accepted_at_ms) == ("connected", None)
        assert v.talk_s == v.answered_talk_s == pytest.approx(10.445)


def test_a_shared_called_party_is_judged_by_its_declared_mode(tmp_path: Path) -> None:
    v = _verdict(tmp_path, samples.DECLINE_LOGS, samples.DECLINE_CID, "decline", own=False)
    assert v.outcome == "not_accepted"


def _called(
    dtmf: float | None = 2.0,
    bye_received: float | None = None,
    bye_sent: float | None = None,
) -> logs.CalledPartyLog:
    return logs.CalledPartyLog(
        x_cc_call="c",
        call_id="x",
        invite_at=0.0,
        answered_at=0.5,
        dtmf_at=dtmf,
        bye_received_at=bye_received,
        bye_sent_at=bye_sent,
    )


def _handset(bye_sent: float | None = None, bye_received: float | None = None) -> logs.HandsetLog:
    return logs.HandsetLog("h", invite_at=-4.0, bye_sent_at=bye_sent, bye_received_at=bye_received)


KEY_END = 3.0  # dtmf at 2.0 + 1.0 s of keying


@pytest.mark.parametrize(
    ("mode", "handset", "called", "expected"),
    [
        # accept: the digit refused (Asterisk hung up 18 ms after it) is not accepted
        ("accept", _handset(bye_received=3.03), _called(bye_received=3.018), False),
        # accept: still up long after the digit; ended by Asterisk (a time limit, say)
        ("accept", _handset(bye_received=7.0), _called(bye_received=7.0), True),
        # accept: the handset hung up right after the digit and the BYE followed at once
        ("accept", _handset(bye_sent=3.2), _called(bye_received=3.203), True),
        # accept: the handset hung up while the digit was keyed
        ("accept", _handset(bye_sent=2.5), _called(bye_received=2.503), False),
        # accept: it never keyed (the call ended before)
        ("accept", _handset(bye_sent=1.5), _called(dtmf=None, bye_received=1.502), False),
        # accept: the called party hung up itself, well after accepting
        ("accept", _handset(bye_received=6.0), _called(bye_sent=6.0), True),
        # accept: stopped by the harness without any BYE
        ("accept", _handset(bye_sent=2.0), _called(), False),
        # decline on a dialplan that does not ask: the call went on after the digit
        ("decline", _handset(bye_sent=9.0), _called(bye_received=9.002), True),
        # decline: hung up at once
        ("decline", _handset(bye_received=3.03), _called(bye_received=3.02), False),
        # ignore: the handset's hangup reached the called party at once: bridged
        ("ignore", _handset(bye_sent=5.0), _called(dtmf=None, bye_received=5.002), True),
        # ignore: the called party's BYE came only when the gosub gave up
        ("ignore", _handset(bye_sent=5.0), _called(dtmf=None, bye_received=12.0), False),
        # ignore: Asterisk hung up both
        ("ignore", _handset(bye_received=11.0), _called(dtmf=None, bye_received=11.0), False),
    ],
)
def test_bridged(
    mode: str,
    handset: logs.HandsetLog,
    called: logs.CalledPartyLog,
    expected: bool,
) -> None:
    key_end = KEY_END if called.dtmf_at is not None and mode != "ignore" else None
    assert bridged(mode, handset, called, key_end) is expected


def test_settle_window_is_generous_but_short() -> None:
    # Asterisk hung the called party up 2 ms after Read() returned a refused digit.
    assert 0.1 < ACCEPT_SETTLE_S <= 2.0


def test_accept_digit_refused_keeps_the_accept_time(tmp_path: Path) -> None:
    handset, called = samples.ACCEPT_LOGS
    # Asterisk hangs up 20 ms after the digit: the dialplan wanted another one.
    called = called.replace("1795908539.000000|280887", "1795908534.000000|246675")
    handset = handset.replace("bye_sent", "bye_received").replace(
        "1795908539.000000|278526", "1795908534.000000|256000"
    )
    v = _verdict(tmp_path, (handset, called), samples.ACCEPT_CID, "accept")
    assert (v.outcome, v.talk_s, v.ended_by) == ("not_accepted", 0.0, "network")
    assert v.accepted_at_ms == pytest.approx(2506.2)  # the called party did press it


def test_result_json_keeps_the_timings_together() -> None:
    r = CallResult(
        outcome="connected",
        reason=None,
        decision=None,
        setup_ms=1.0,
        post_pin_ms=1.0,
        talk_s=5.0,
        sip_call_id="c",
        sip_status=200,
        called_party_saw_invite=True,
        ended_by="handset",
        called_party_mode="accept",
        cell="A1-01",
        number="1",
        pin_tries=1,
        handset_exit=0,
        called_party_exit=0,
        accepted_at_ms=2506.2,
        answered_talk_s=7.5,
    )
    keys = list(r.to_dict())
    i = keys.index("talk_s")
    assert keys[i : i + 3] == ["talk_s", "accepted_at_ms", "answered_talk_s"]
    assert r.to_dict()["accepted_at_ms"] == 2506.2
