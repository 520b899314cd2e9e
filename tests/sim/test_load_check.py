"""The load runner's correlation (each call against the daemon's records), report and progress."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import pytest

from callcontrol_lab.simulator import logs
from callcontrol_lab.simulator.load import check, mix, plan, report, runner
from callcontrol_lab.simulator.load.check import DbFacts, SipFacts
from callcontrol_lab.simulator.load.mix import Kind

T0 = 1_800_000_000.0
TIMING = plan.Timing(hold_s=10)


def planned(kind: Kind) -> plan.PlannedCall:
    cell = plan.LoadCell("LOAD-0001", plan.POOL_OF.get(kind, plan.MAIN), "LOAD0001", "9276")
    pins = (plan.wrong_pin(cell.pin),) * 3 if kind is Kind.WRONG_PIN else (cell.pin,)
    return plan.PlannedCall(0, kind, cell, plan.NUMBER_OF[kind], 0.0, pins, 12000)


def sip(kind: Kind, talk_s: float = 40.0) -> SipFacts:
    """What SIPp saw of a call that went as its kind expects."""
    h = logs.HandsetLog("cid-1", invite_at=T0, answered_at=T0 + 0.01, pin_at=[T0 + 1.5])
    h.invite_data = "LOAD-0001 02079460100"
    want = mix.EXPECTED[kind]
    c = None
    if want.decision == "allow":
        c = logs.CalledPartyLog("cid-1", "out-1", invite_at=T0 + 4.2)
        if want.bridged:
            c.answered_at = T0 + 3.9
            c.dtmf_at = T0 + 5.4
            c.bye_received_at = T0 + 5.4 + 1.0 + talk_s
    return SipFacts("cid-1", h, c, 200)


def db(kind: Kind, talk: int = 10) -> DbFacts:
    """The daemon's records of a call that went as its kind expects (landline, per second)."""
    want = mix.EXPECTED[kind]
    f = DbFacts(decision=want.decision, reason=want.reason, decision_ms=12.0)
    if want.decision == "refuse":
        return f
    f.call_row = 7
    f.rate, f.rounding, f.reserved_pence = 310, "per_second", 93
    f.free = f.privileged = kind is Kind.PRIVILEGED
    f.reservation_status = "settled"
    if want.bridged:
        f.accepted, f.ended_by, f.talk_seconds = True, "caller", talk
        f.dial_status = "ANSWER"
    else:
        f.accepted, f.talk_seconds, f.ended_by = False, 0, "nobody"
        f.dial_status = want.dial_statuses[0]
    f.charge_pence = check.expected_charge(dataclasses.replace(f, charge_pence=0)) or 0
    f.ledger_charges = [-f.charge_pence] if f.charge_pence else []
    if want.recorded:
        f.recording_ms = talk * 1000 + 40
    if kind is Kind.PRIVILEGED:
        f.recording_note = "not recorded: privileged (an approved legal contact)"
    return f


@pytest.mark.parametrize("kind", list(Kind))
def test_a_call_that_went_as_expected_has_no_problems(kind: Kind) -> None:
    v = check.judge(planned(kind), sip(kind), db(kind, talk=40))
    assert v.problems == []
    assert v.outcome == mix.EXPECTED[kind].outcome


def test_the_charge_is_the_tariffs_for_the_daemons_talk_time() -> None:
    assert db(Kind.APPROVED, talk=40).charge_pence == 2  # 40 s at 3.1p/min = 2.07p
    assert db(Kind.APPROVED, talk=5).charge_pence == 0  # 0.26p rounds to nothing
    per_minute = dataclasses.replace(db(Kind.APPROVED, 40), rounding="per_started_minute")
    assert check.expected_charge(per_minute) == 3


def _problems(kind: Kind, **changes: object) -> list[str]:
    return check.judge(
        planned(kind), sip(kind), dataclasses.replace(db(kind, 40), **changes)
    ).problems


@pytest.mark.parametrize(
    ("kind", "changes", "says"),
    [
        (Kind.APPROVED, {"ledger_charges": [-2, -2]}, "billed exactly once"),
        (Kind.APPROVED, {"ledger_charges": []}, "billed exactly once"),
        (Kind.APPROVED, {"charge_pence": 5, "ledger_charges": [-5]}, "the tariff says 2p"),
        (Kind.APPROVED, {"charge_pence": None}, "never settled"),
        (
            Kind.APPROVED,
            {"recording_ms": None, "recording_missing": "no spool file"},
            "no recording: no spool file",
        ),
        (Kind.APPROVED, {"recording_ms": 31000}, "recording of 31000 ms for 40 s"),
        (Kind.APPROVED, {"store_problems": ["recording 3 (call 7): file x altered"]}, "altered"),
        (Kind.APPROVED, {"talk_seconds": 30}, "seen by the called party"),
        (Kind.APPROVED, {"ended_by": "limit"}, "ended by limit"),
        (Kind.APPROVED, {"free": True}, "rated as free"),
        (Kind.PRIVILEGED, {"free": False}, "rated at the tariff, expected free"),
        (Kind.PRIVILEGED, {"privileged": False}, "privileged is False"),
        (Kind.APPROVED, {"privileged": None}, "disagree on whether it is privileged"),
        (Kind.APPROVED, {"rate": None}, "without a credit reservation"),
        (Kind.APPROVED, {"reservation_status": "open"}, "reservation is still open"),
        (Kind.APPROVED, {"talk_seconds": None}, "no talk time recorded"),
        (Kind.APPROVED, {"decisions": 2}, "2 decisions recorded"),
        (Kind.PRIVILEGED, {"spooled": True}, "audio was spooled"),
        (Kind.APPROVED, {"ledger_charges": [-2, 5]}, "billed exactly once"),
        (Kind.APPROVED, {"reason": "global_allowed"}, "expected allow/approved_contact"),
        (Kind.PRIVILEGED, {"recording_ms": 40000}, "must never be"),
        (Kind.PRIVILEGED, {"recording_note": ""}, "without its note"),
        (Kind.PRIVILEGED, {"charge_pence": 2, "ledger_charges": [-2]}, "expected nothing"),
        (Kind.BUSY, {"dial_status": "CHANUNAVAIL"}, "expected BUSY"),
        (Kind.BUSY, {"accepted": True}, "should never be"),
        (
            Kind.UNAPPROVED,
            {"decision": "allow", "reason": "approved_contact"},
            "expected refuse/not_approved",
        ),
        (Kind.UNAPPROVED, {"call_row": 9}, "a call row exists"),
        (Kind.WRONG_PIN, {"reason": "no_pin"}, "expected refuse/wrong_pin"),
    ],
)
def test_each_kind_of_mismatch_is_named(kind: Kind, changes: dict[str, object], says: str) -> None:
    problems = _problems(kind, **changes)
    assert any(says in p for p in problems), problems


@pytest.mark.parametrize(
    ("talk", "recording_ms"),
    [
        (40, 40_040),  # a quiet Asterisk: the talk's wall time
        (40, 38_000),  # the rounding and the bridge's start, at the 2 s
        (41, 44_200),  # the capacity run's longest: late audio padded
        (40, 46_000),  # the bound: 40 s + 2 s + 10%
        (20, 23_890),  # the lab's worst with the called party's audio late in bursts
    ],
)
def test_a_recording_padded_by_late_audio_fits(talk: int, recording_ms: int) -> None:
    problems = _problems(Kind.APPROVED, talk_seconds=talk, recording_ms=recording_ms)
    assert not [p for p in problems if "recording" in p], problems


@pytest.mark.parametrize(
    ("talk", "recording_ms", "says"),
    [
        (40, 37_999, "cut short"),  # stopped early or truncated: the 2 s hold both ways
        (40, 1_000, "cut short"),
        (40, 0, "cut short"),
        (40, 46_001, "longer than late audio's padding explains"),
        (40, 80_000, "longer than late audio's padding explains"),  # appended to, or another's
        (10, 14_000, "longer than late audio's padding explains"),
    ],
)
def test_a_recording_that_does_not_fit_the_talk_is_a_mismatch(
    talk: int, recording_ms: int, says: str
) -> None:
    problems = _problems(Kind.APPROVED, talk_seconds=talk, recording_ms=recording_ms)
    assert any(says in p for p in problems), problems


def test_a_privileged_call_is_never_to_be_recorded_whatever_its_length() -> None:
    for recording_ms in (0, 20_000, 40_000, 46_000):
        problems = _problems(Kind.PRIVILEGED, recording_ms=recording_ms)
        assert any("must never be" in p for p in problems), problems


def test_a_refused_call_that_reached_the_called_party_is_a_mismatch() -> None:
    s = sip(Kind.APPROVED)
    v = check.judge(planned(Kind.UNAPPROVED), s, db(Kind.UNAPPROVED))
    assert any("got an INVITE" in p for p in v.problems)


def test_two_invites_to_the_called_party_for_one_call_is_a_mismatch() -> None:
    s = sip(Kind.APPROVED)
    s.called_invites = 2
    v = check.judge(planned(Kind.APPROVED), s, db(Kind.APPROVED, 40))
    assert any("2 INVITEs" in p for p in v.problems)


def test_a_call_placed_from_another_cell_is_a_mismatch() -> None:
    s = sip(Kind.APPROVED)
    assert s.handset is not None
    s.handset.invite_data = "LOAD-0002 02079460100"
    v = check.judge(planned(Kind.APPROVED), s, db(Kind.APPROVED, 40))
    assert any("not from its planned cell" in p for p in v.problems)


def test_calls_asterisk_never_answered_or_never_decided_are_failed() -> None:
    s = sip(Kind.APPROVED)
    assert s.handset is not None
    s.handset.answered_at = None
    s.status = 503
    v = check.judge(planned(Kind.APPROVED), s, DbFacts())
    assert v.outcome == "failed" and "SIP status 503" in v.problems[0]
    v = check.judge(planned(Kind.APPROVED), sip(Kind.APPROVED), DbFacts())
    assert v.outcome == "failed" and "no decision" in v.problems[0]
    v = check.judge(planned(Kind.APPROVED), SipFacts("cid-1"), DbFacts())
    assert v.outcome == "failed"


def test_setup_and_post_pin_times() -> None:
    s = sip(Kind.APPROVED)
    assert check.setup_ms(s) == 4200.0
    # The PIN 9276 is keyed as "9276#" from 1.5 s: the "#" ends 400 + 11 x 200 ms later, at
    # 4.1 s (the daemon reads every key up to "#").
    assert check.post_pin_ms(planned(Kind.APPROVED), s) == 100.0
    assert check.setup_ms(sip(Kind.UNAPPROVED)) is None


def test_final_statuses_keep_the_last_final_response_per_call() -> None:
    def msg(cid: str, status: int | None, sent: bool = False) -> logs.TracedMessage:
        return logs.TracedMessage(None, sent, "", cid, "INVITE", status)

    got = check.final_statuses(
        [msg("a", 401), msg("a", 100), msg("a", 200), msg("b", 503), msg("c", None, True)]
    )
    assert got == {"a": 200, "b": 503}


def test_percentiles_are_nearest_rank() -> None:
    p = report.percentiles([float(x) for x in range(1, 101)] + [None])
    assert (p["n"], p["p50"], p["p95"], p["p99"], p["max"]) == (100, 50.0, 95.0, 99.0, 100.0)
    assert report.percentiles([])["p50"] is None


def _verdicts() -> list[check.Verdict]:
    out = []
    for i, kind in enumerate([Kind.APPROVED, Kind.APPROVED, Kind.UNAPPROVED, Kind.BUSY]):
        p = dataclasses.replace(planned(kind), index=i)
        out.append(check.judge(p, sip(kind), db(kind, 40)))
    bad = dataclasses.replace(db(Kind.APPROVED, 40), ledger_charges=[-2, -2])
    out.append(
        check.judge(dataclasses.replace(planned(Kind.APPROVED), index=4), sip(Kind.APPROVED), bad)
    )
    return out


def test_figures_count_outcomes_and_list_mismatches(tmp_path: Path) -> None:
    verdicts = _verdicts()
    progress = [
        runner.Progress(T0 + i, float(i), i, 0, 0, 0, 0, c) for i, c in enumerate([1, 4, 2])
    ]
    watch = runner.ProcWatch(
        "asterisk", 1, [runner.Sample(T0 + 1, 30.0, 80.0), runner.Sample(T0 + 2, 50.0, 90.0)]
    )
    f = report.figures(
        verdicts,
        progress,
        [watch],
        settings={"cells": 5, "rate": 1, "calls": 5, "hold_s": 40, "mix": "test"},
        settle_s=0.5,
        store_problems=[],
        started_at=T0,
        ended_at=T0 + 60,
    )
    assert (f["attempted"], f["connected"], f["refused"], f["unanswered"], f["failed"]) == (
        5,
        3,
        1,
        1,
        0,
    )
    assert f["refused_by_reason"] == {"not_approved": 1}
    assert f["unanswered_by_dial_status"] == {"BUSY": 1}
    assert f["peak_concurrent"] == 4
    assert f["usage"]["asterisk"] == {
        "pid": 1,
        "cpu_pct_mean": 40.0,
        "cpu_pct_max": 50.0,
        "cpu_s": None,  # made from samples the test gave, not read: no total
        "rss_mb_max": 90.0,
    }
    assert f["billing"] == {"charged_calls": 3, "charged_pence": 6}
    assert [m["index"] for m in f["mismatches"]] == [4]
    assert f["ok"] is False
    text = report.summary(f)
    assert "MISMATCHES: 1 call(s)" in text and "billed exactly once" in text and "NOT OK" in text
    report.write_json(tmp_path / "load.json", f, verdicts)
    data = json.loads((tmp_path / "load.json").read_text())
    assert len(data["calls"]) == 5 and data["calls"][4]["problems"]
    report.chart(tmp_path / "load.png", verdicts, progress, [watch], T0, "test")
    assert (tmp_path / "load.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sipp_stats_reads_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(
        "StartTime;CurrentCall;FailedCall(C);\n2026-11-29 01:00:00;3;0;\n2026-11-29 01:00:01;7;2;\n"
    )
    assert runner.sipp_stats(path) == (7, 2)
    assert runner.sipp_stats(tmp_path / "none.csv") == (None, None)


def test_progress_counts_from_the_growing_logs(tmp_path: Path) -> None:
    hs, cp = tmp_path / "h.log", tmp_path / "c.log"
    hs.write_text("CCSIM|invite|a|X 1|1|0\nCCSIM|invite|b|X 1|1|0\nCCSIM|end|b||2|0\nCCSIM|inv")
    cp.write_text("CCSIM|invite|o1| a|1|0\nCCSIM|dtmf|o1| a|2|0\n")
    counter = runner._Counter(runner._Tail(hs), runner._Tail(cp), tmp_path / "none.csv")
    p = counter.update(0.0, 3.0)
    assert (p.placed, p.connected, p.refused, p.ended, p.concurrent) == (2, 1, 1, 1, 1)
    with hs.open("a") as f:
        f.write("ite|c|X 1|3|0\nCCSIM|end|a||4|0\n")
    p = counter.update(0.0, 5.0)
    assert (p.placed, p.ended, p.refused, p.concurrent) == (3, 2, 1, 1)


def test_pid_listening_finds_the_process_behind_a_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert runner.pid_listening(s.getsockname()[1]) == os.getpid()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert runner.pid_listening(free) is None


def test_proc_watch_samples_cpu_and_memory_of_a_process() -> None:
    w = runner.ProcWatch("me", os.getpid())
    w.sample(1.0)
    sum(range(2_000_000))
    w.sample(2.0)
    assert len(w.samples) == 1 and w.samples[0].rss_mb > 1
    gone = runner.ProcWatch("gone", None)
    gone.sample(1.0)
    assert gone.samples == []


def test_one_percentile_for_the_simulator_and_the_benchmark() -> None:
    from callcontrol_lab.bench.micro import stats
    from callcontrol_lab.measure import percentile

    assert report.percentile is percentile is stats.percentile
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0], 100) == 3.0


def test_the_cpu_reader_reads_this_process() -> None:
    import os

    from callcontrol_lab.measure import machine_busy_s, process_stat

    me = process_stat(os.getpid(), memory=True)
    assert me is not None and me.ppid == os.getppid() and me.rss_kb > 0 and me.cpu_s > 0
    assert process_stat(2**22 + 12345) is None
    assert machine_busy_s() > 0


def test_a_watched_process_reports_its_cpu_seconds_between_first_and_last_sample() -> None:
    import time

    watch = runner.ProcWatch("me", os.getpid())
    watch.sample(time.time())
    assert watch.cpu_s is None  # one sample: no interval yet
    spin_until = time.process_time() + 0.3
    while time.process_time() < spin_until:
        pass
    watch.sample(time.time())
    assert watch.cpu_s is not None and 0.25 <= watch.cpu_s <= 2.0


@pytest.mark.parametrize("kind", [Kind.APPROVED, Kind.PRIVILEGED])
def test_a_call_the_handset_hung_up_before_its_talk_is_no_call(kind: Kind) -> None:
    """Under overload a slow setup eats the talk (the handset keeps its own timers): a call
    whose called party saw under half the planned talk fails, in the daemon's way and in the
    static way alike, however right its records are."""
    talking = dataclasses.replace(planned(kind), talk_ms=40_000)
    assert check.judge(talking, sip(kind, talk_s=40.0), db(kind, talk=40)).problems == []
    assert check.judge_sip_only(talking, sip(kind, talk_s=40.0)).outcome == "connected"
    short = check.judge(talking, sip(kind, talk_s=0.3), db(kind, talk=0))
    assert any("talked 0.3 s of the 40 s planned" in p for p in short.problems), short.problems
    static = check.judge_sip_only(talking, sip(kind, talk_s=0.3))
    assert static.outcome == "failed" and "talked 0.3 s" in static.problems[0]
    # half the planned talk is still a call (the handset's own margin, a slow acceptance)
    assert check.judge_sip_only(talking, sip(kind, talk_s=20.5)).outcome == "connected"


def test_the_plan_gives_bridged_calls_their_talk() -> None:
    p = plan.plan_load([Kind.APPROVED, Kind.UNAPPROVED], cells=4, rate=1, timing=TIMING)
    talks = {c.kind: c.talk_ms for c in p.calls}
    assert talks == {Kind.APPROVED: 10_000, Kind.UNAPPROVED: 0}
