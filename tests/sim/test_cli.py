"""callcontrol-sim's command line: arguments, exit statuses, the JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callcontrol_lab.simulator import cli
from callcontrol_lab.simulator.call import CallResult
from callcontrol_lab.simulator.sipp import SimError

BASE = ["call", "--cell", "A1-01", "--dial", "447700900123", "--password", "pw"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["dance"],
        ["call"],
        ["call", "--cell", "A1-01"],  # no --dial
        [*BASE, "--pin", "12x4"],
        [*BASE, "--pin", "1", "--pin", "2", "--pin", "3", "--pin", "4"],
        [*BASE, "--pin-tries", "2"],  # no PIN to key
        [*BASE, "--pin", "1234", "--pin-tries", "4"],
        [*BASE, "--hold", "-1"],
        [*BASE, "--hold", "soon"],
        [*BASE, "--port", "70000"],
        [*BASE, "--called-party", "maybe"],
        [*BASE, "--called-party", "accept", "--accept-after", "-1"],
        [*BASE, "--called-party", "accept", "--accept-digit", "12"],
        [*BASE, "--called-party", "accept", "--accept-digit", "x"],
        [*BASE, "--called-party", "decline", "--accept-digit", "3", "--decline-digit", "3"],
        [*BASE, "--called-party", "decline", "--decline-digit", "1"],  # the accept digit
        [*BASE, "--dtmf-ms", "10", "--pin", "1234"],
        [*BASE, "--called-party-log", "x.log"],  # only with --no-called-party
        [*BASE, "--password", "a;b"],
        [*BASE, "--config", "/nonexistent/callcontrol.toml"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys, monkeypatch) -> None:
    async def never(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("place_call reached")

    monkeypatch.setattr(cli, "place_call", never)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip()
    assert "Traceback" not in err


def test_help_explains_the_options(capsys) -> None:
    assert cli.main(["call", "--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--cell",
        "--pin",
        "--pin-tries",
        "--hold",
        "--password",
        "--called-party",
        "--no-called-party",
        "--host",
        "--port",
        "--called-party-port",
        "--config",
        "--timeout",
        "--pin-retry-pause",
        "--accept-after",
        "--accept-digit",
        "--decline-digit",
        "not_accepted",
        "accepted_at_ms",
        "answered_talk_s",
    ):
        assert option in out
    for mode in ("answer", "busy", "noanswer", "accept", "decline", "ignore"):
        assert mode in out


def _result(**changes) -> CallResult:
    values = dict(
        outcome="connected",
        reason=None,
        decision=None,
        setup_ms=3725.6,
        post_pin_ms=8.2,
        talk_s=5.04,
        sip_call_id="ccsim-A1-01-x-1",
        sip_status=200,
        called_party_saw_invite=True,
        ended_by="handset",
        called_party_mode="answer",
        cell="A1-01",
        number="447700900123",
        pin_tries=1,
        handset_exit=0,
        called_party_exit=0,
    )
    return CallResult(**(values | changes))


def test_a_call_prints_one_json_line(capsys, monkeypatch) -> None:
    seen = {}

    async def fake(**kwargs):
        seen.update(kwargs)
        return _result()

    monkeypatch.setattr(cli, "place_call", fake)
    argv = [
        *BASE,
        "--pin",
        "9999",
        "--pin",
        "1234",
        "--pin-tries",
        "3",
        "--hold",
        "5",
        "--ring",
        "1",
        "--port",
        "5260",
        "--called-party",
        "busy",
        "--timeout",
        "60",
    ]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    for key in (
        "outcome",
        "reason",
        "setup_ms",
        "talk_s",
        "sip_call_id",
        "sip_status",
        "called_party_saw_invite",
    ):
        assert key in data
    assert seen["pin"] == ("9999", "1234") and seen["pin_tries"] == 3
    assert seen["hold"] == 5 and seen["ring"] == 1
    assert seen["pin_pause"] == 1.5 and seen["pin_retry_pause"] == 3.0
    assert seen["called_party"] == "busy" and seen["port"] == 5260
    assert seen["called_party_port"] is None  # from the settings
    assert seen["password"] == "pw" and seen["timeout_s"] == 60
    assert seen["accept_after"] == 1.5 and seen["accept_digit"] is None


def test_the_default_called_party_accepts_as_the_dialplan_asks(capsys, monkeypatch) -> None:
    seen = {}

    async def fake(**kwargs):
        seen.update(kwargs)
        return _result()

    monkeypatch.setattr(cli, "place_call", fake)
    assert cli.main([*BASE, "--pin", "1234"]) == 0
    assert seen["called_party"] == "accept" and seen["called_party_mode"] is None


def test_acceptance_options(capsys, monkeypatch) -> None:
    seen = {}

    async def fake(**kwargs):
        seen.update(kwargs)
        return _result(called_party_mode="accept", accepted_at_ms=2506.2, answered_talk_s=7.56)

    monkeypatch.setattr(cli, "place_call", fake)
    argv = [*BASE, "--pin", "1234", "--called-party", "accept", "--accept-after", "2.5"]
    assert cli.main([*argv, "--accept-digit", "5", "--decline-digit", "9"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["accepted_at_ms"] == 2506.2 and data["answered_talk_s"] == 7.56
    assert seen["called_party"] == "accept" and seen["accept_after"] == 2.5
    assert (seen["accept_digit"], seen["decline_digit"]) == ("5", "9")


def test_no_called_party(capsys, monkeypatch) -> None:
    seen = {}

    async def fake(**kwargs):
        seen.update(kwargs)
        return _result(called_party_saw_invite=None, called_party_mode=None)

    monkeypatch.setattr(cli, "place_call", fake)
    assert (
        cli.main([*BASE, "--pin", "1234", "--no-called-party", "--called-party-log", "cp.log"]) == 0
    )
    assert seen["called_party"] is None and seen["called_party_log"] == Path("cp.log")
    assert seen["called_party_mode"] == "accept"
    argv = [*BASE, "--no-called-party", "--called-party-log", "cp.log", "--called-party", "ignore"]
    assert cli.main(argv) == 0
    assert seen["called_party"] is None and seen["called_party_mode"] == "ignore"


def test_harness_failure_exits_1_with_one_line(capsys, monkeypatch) -> None:
    async def broken(**kwargs):
        raise SimError("the handset's SIP port 127.0.0.1:5080 is in use")

    monkeypatch.setattr(cli, "place_call", broken)
    assert cli.main([*BASE, "--pin", "1234"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "callcontrol-sim: the handset's SIP port 127.0.0.1:5080 is in use"
    )


def test_no_password_and_no_database_exits_1(tmp_path: Path, capsys, monkeypatch) -> None:
    db = tmp_path / "missing.sqlite3"
    config = tmp_path / "callcontrol.toml"
    config.write_text(f'base_dir = "{tmp_path}"\n[database]\nurl = "sqlite+aiosqlite:///{db}"\n')
    monkeypatch.delenv("CALLCONTROL_DATABASE_URL", raising=False)
    argv = ["call", "--cell", "A1-01", "--dial", "1", "--pin", "1234", "--config", str(config)]
    assert cli.main(argv) == 1
    assert "no SIP password for cell A1-01" in capsys.readouterr().err
    assert not db.exists()  # looking must not create the database
