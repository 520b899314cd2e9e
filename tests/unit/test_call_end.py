"""The facts of a call's end: parsing what Asterisk reports, who ended it, what it costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcontrol.domain.call_end import CallEnd, ended_by, from_fields, read_journal
from callcontrol.domain.tariffs import Rounding
from callcontrol.services.settle import OpenCall, settle_charge

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CALLER = "PJSIP/A1-01-00000001"


def call(**kw: object) -> OpenCall:
    base = dict(
        call_id=1,
        uniqueid="1.1",
        channel=CALLER,
        prisoner_id=1,
        number="+447911123456",
        started_at=T0,
        rate=688,
        rounding=Rounding.PER_SECOND,
        free=False,
        max_seconds=91,
        reserved_pence=10,
    )
    base.update(kw)
    return OpenCall(**base)  # type: ignore[arg-type]


def end(talk: float | None, cause: str = "16", source: str = CALLER) -> CallEnd:
    accepted = None if talk is None else T0
    return CallEnd("1.1", accepted, T0 + timedelta(seconds=talk or 3), "ANSWER", cause, source)


def test_fields_as_the_dialplan_sends_them() -> None:
    e = from_fields(
        ["1764331200.5", "1764331210.250", "1764331220.749", "ANSWER", "16", "PJSIP/pstn-00000002"]
    )
    assert e.talk_seconds() == 10  # 10.499 s rounds to 10
    assert e.hangup_source == "PJSIP/pstn-00000002"
    not_accepted = from_fields(["1.1", "", "1764331220.0", "NOANSWER", "19", ""])
    assert not_accepted.accepted_at is None and not_accepted.talk_seconds() == 0


@pytest.mark.parametrize(
    "fields",
    [
        [],
        ["1.1"],
        ["", "", "1.0"],
        ["1.1", "x", "1.0"],
        ["1.1", "", "nan"],
        ["1.1", "", ""],
        ["1.1", "", "-5"],
    ],
)
def test_malformed_ends_are_refused(fields: list[str]) -> None:
    with pytest.raises(ValueError):
        from_fields(fields)


def test_journal_merges_acceptance_and_end_and_reports_bad_lines() -> None:
    calls, bad = read_journal(
        [
            "accepted|1.1|1764331210.000\n",
            "ended|1.1||1764331250.000|ANSWER|16|PJSIP/A1-01-0000|1\n",
            "accepted|2.2|1764331300.000\n",
            "garbage line\n",
            "ended|3.3|||ANSWER|16|\n",
        ]
    )
    assert calls["1.1"].end is not None and calls["1.1"].end.talk_seconds() == 40
    assert calls["1.1"].end.hangup_source == "PJSIP/A1-01-0000|1"
    assert calls["2.2"].end is None and calls["2.2"].accepted_at is not None
    assert bad == ["garbage line", "ended|3.3|||ANSWER|16|"]


def test_who_ended_the_call() -> None:
    assert ended_by(end(30), CALLER, 91) == "caller"
    assert ended_by(end(30, source="PJSIP/pstn-00000002"), CALLER, 91) == "called"
    assert ended_by(end(90.6), CALLER, 91) == "limit"
    assert ended_by(end(30, cause="38", source=""), CALLER, 91) == "system"
    # Asterisk itself hung up (it was shut down): no channel to blame.
    assert ended_by(end(30, cause="16", source=""), CALLER, 91) == "system"
    assert ended_by(end(30, cause="41", source="PJSIP/pstn-00000002"), CALLER, 91) == "system"


def test_charges() -> None:
    assert settle_charge(call(), end(90), 60).charge_pence == 10  # 688 * 90 / 6000 = 10.32
    assert settle_charge(call(), end(10), 60).charge_pence == 1
    minute = call(rounding=Rounding.PER_STARTED_MINUTE, reserved_pence=100)
    assert settle_charge(minute, end(10), 60).charge_pence == 7  # 6.88 rounds to 7
    # Not accepted, free, or dropped by the system early: nothing.
    assert settle_charge(call(), end(None, cause="19"), 60).charge_pence == 0
    assert settle_charge(call(free=True), end(60), 60).charge_pence == 0
    assert settle_charge(call(), end(30, cause="38", source=""), 60).charge_pence == 0
    # Dropped by the system after the free time: charged for what was talked.
    assert (
        settle_charge(call(reserved_pence=20), end(70, cause="38", source=""), 60).charge_pence == 8
    )
    # Never more than the time limit, never more than reserved.
    over = settle_charge(call(reserved_pence=5), end(200), 60)
    assert over.talk_seconds == 91 and over.charge_pence == 5
