"""Parsing the SIPp logs and traces, and writing the handsets' injection file."""

from __future__ import annotations

import pytest

from callcontrol_lab.simulator import logs
from tests.sim import samples


def test_events_are_parsed_and_other_lines_skipped() -> None:
    text = "SIPp 3.8 log start\n" + samples.HANDSET_LOG + "CCSIM|broken|line\nCCSIM|x|y|z|a|b\n"
    events = logs.parse_events(text)
    assert [e.event for e in events] == ["invite", "answered", "pin", "pin", "bye_sent", "end"]
    assert events[0].call_id == samples.CID
    assert events[0].data == "A1-01 447700900123"
    assert events[0].at == pytest.approx(1795906635.7536)
    assert events[2].data == "1.000000"


def test_handset_call() -> None:
    calls = logs.handset_calls(logs.parse_events(samples.HANDSET_LOG))
    call = calls[samples.CID]
    assert call.invite_at == pytest.approx(1795906635.7536)
    assert call.answered_at == pytest.approx(1795906635.76)
    assert call.pin_at == [pytest.approx(1795906637.26), pytest.approx(1795906642.56)]
    assert call.bye_sent_at is not None and call.bye_received_at is None


def test_called_party_call_keyed_by_x_cc_call_without_the_leading_space() -> None:
    [call] = logs.called_party_calls(logs.parse_events(samples.CALLED_LOG))
    assert call.x_cc_call == samples.CID
    assert call.call_id == "7cd5776b-47da-4d39-9ffa-c82fc3613fdc"
    assert call.talk_s == pytest.approx(1.0905)


def test_called_party_dtmf_event() -> None:
    [call] = logs.called_party_calls(logs.parse_events(samples.ACCEPT_LOGS[1]))
    assert call.x_cc_call == samples.ACCEPT_CID
    assert call.dtmf_at == pytest.approx(1795908533.226675)
    assert call.talk_s == pytest.approx(7.560388)  # still from the 200 OK
    [call] = logs.called_party_calls(logs.parse_events(samples.CALLED_LOG))
    assert call.dtmf_at is None


def test_called_party_talk_ends_at_the_first_bye_and_is_zero_unanswered() -> None:
    text = (
        "CCSIM|invite|a| X|100.000000|0.000000\n"
        "CCSIM|answered|a| X|101.000000|0.000000\n"
        "CCSIM|bye_sent|a| X|104.000000|500000.000000\n"
        "CCSIM|invite|b| Y|200.000000|0.000000\n"
        "CCSIM|busy|b| Y|200.000000|1000.000000\n"
    )
    a, b = logs.called_party_calls(logs.parse_events(text))
    assert a.talk_s == pytest.approx(3.5)
    assert (b.x_cc_call, b.answered_at, b.talk_s) == ("Y", None, 0.0)
    assert b.busy_at == pytest.approx(200.001)


def test_trace_messages() -> None:
    messages = logs.parse_trace(samples.trace(401, 100, 180, 200))
    assert [m.sent for m in messages] == [True, False, False, False, False, False]
    assert messages[0].first_line.startswith("INVITE sip:447700900123@")
    assert messages[0].at is not None
    assert messages[1].status == 401 and messages[1].cseq_method == "INVITE"
    assert messages[-1].status is None and messages[-1].cseq_method == "BYE"
    assert messages[-1].call_id == samples.CID


@pytest.mark.parametrize(
    ("statuses", "final"),
    [
        ((401, 100, 180, 200), 200),  # the challenge is not the final answer
        ((401, 401), 401),  # credentials refused
        ((401, 100, 403), 403),
        ((100,), None),
        ((), None),
    ],
)
def test_final_invite_status(statuses: tuple[int, ...], final: int | None) -> None:
    assert logs.final_invite_status(logs.parse_trace(samples.trace(*statuses))) == final


def test_final_status_of_another_call_is_ignored() -> None:
    messages = logs.parse_trace(samples.trace(401, 200, call_id="other"))
    assert logs.final_invite_status(messages, samples.CID) is None
    assert logs.final_invite_status(messages, "other") == 200


def test_older_trace_timestamps() -> None:
    text = (
        "----------------------------------------------- 2026-11-28\t22:45:41.131579\t"
        "1795905941.131579\nUDP message received [10] bytes:\n\nSIP/2.0 200 OK\n"
        "CSeq: 2 INVITE\n\n"
    )
    [m] = logs.parse_trace(text)
    assert m.at == pytest.approx(1795905941.131579)
    assert m.status == 200


def test_injection_file() -> None:
    call = logs.HandsetCall(
        cell="A1-01",
        password="pw",
        number="447700900123",
        pins=("9999", "1234"),
        pin_tries=3,
        first_pin_ms=1500,
        dtmf_ms=200,
        retry_ms=3000,
        hold_ms=5000,
    )
    text = logs.injection_text([call])
    header, line = text.splitlines()
    assert header == "SEQUENTIAL"
    # the last PIN repeats, each ended by "#"; keying 5 keys of 200 ms: 400 + 11 * 200 + margin
    assert line == "A1-01;pw;447700900123;9999#;1234#;1234#;3;1500;200;2660;3000;5000"
    assert text.endswith("\n")


def test_injection_without_pin() -> None:
    call = logs.HandsetCall(cell="A1-01", password="pw", number="999", pins=(), pin_tries=0)
    assert logs.injection_text([call]).splitlines()[1] == "A1-01;pw;999;;;;0;1500;200;0;3000;10000"


def test_write_injection(tmp_path) -> None:
    calls = [
        logs.HandsetCall(cell=f"A1-0{n}", password="pw", number="1", pins=("1234",)) for n in (1, 2)
    ]
    path = tmp_path / "calls.csv"
    logs.write_injection(path, calls)
    assert path.read_text().splitlines()[1:] == [
        "A1-01;pw;1;1234#;1234#;1234#;1;1500;200;2660;3000;10000",
        "A1-02;pw;1;1234#;1234#;1234#;1;1500;200;2660;3000;10000",
    ]


def test_keying_time_matches_what_sipp_did() -> None:
    # Measured with SIPp 3.8: 4 digits of 200 ms read by Asterisk 2.21 s after play_dtmf,
    # 4 digits of 100 ms after 1.31 s.
    assert logs.dtmf_end_ms("1234", 200) == 2200
    assert logs.dtmf_end_ms("1234", 100) == 1300
    assert logs.keying_ms(["12", "123456"], 100) == 400 + 13 * 100 + logs.KEYING_MARGIN_MS
    # The called party's one digit: Asterisk's Read() returned 1.02 s after the dtmf event.
    assert logs.dtmf_end_ms("1", 200) == 1000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": "a;b"}, "cannot contain"),
        ({"cell": "A1 01"}, "spaces"),
        ({"number": ""}, "empty"),
        ({"pins": ("12x4",)}, "only digits"),
        ({"pins": ("",)}, "only digits"),
        ({"pin_tries": 4}, "0 to 3"),
        ({"pins": (), "pin_tries": 1}, "no PIN"),
        ({"pins": ("1", "2", "3", "4")}, "at most 3"),
        ({"dtmf_ms": 20}, "50 to 2000"),
        ({"hold_ms": -1}, "negative"),
    ],
)
def test_calls_sipp_cannot_carry_are_refused(changes: dict, message: str) -> None:
    values = {"cell": "A1-01", "password": "pw", "number": "1", "pins": ("1234",)} | changes
    with pytest.raises(ValueError, match=message):
        logs.injection_text([logs.HandsetCall(**values)])


def test_pin_for_try() -> None:
    call = logs.HandsetCall(cell="c", password="p", number="1", pins=("1", "2"), pin_tries=3)
    assert [call.pin_for_try(n) for n in (1, 2, 3)] == ["1", "2", "2"]
