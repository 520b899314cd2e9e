"""The one-await API: settings fill in the ports and the password."""

from __future__ import annotations

import pytest

from callcontrol.config import load_settings
from callcontrol_lab.simulator import call as low
from callcontrol_lab.simulator import calls
from callcontrol_lab.simulator.sipp import SimError


def test_handset_call() -> None:
    c = calls.handset_call(cell="A1-01", password="pw", dial="1", pin="1234", hold=5, ring=1)
    assert (c.pins, c.pin_tries, c.hold_ms, c.first_pin_ms, c.retry_ms) == (
        ("1234",),
        1,
        6000,
        1500,
        3000,
    )
    c = calls.handset_call(cell="A1-01", password="pw", dial="1", pin=["0000", "1234"], pin_tries=3)
    assert [c.pin_for_try(n) for n in (1, 2, 3)] == ["0000", "1234", "1234"]
    assert calls.handset_call(cell="A1-01", password="pw", dial="1").pin_tries == 0
    with pytest.raises(ValueError):
        calls.handset_call(cell="A1-01", password="pw", dial="1", pin="12a4")


async def test_ports_come_from_the_settings(monkeypatch) -> None:
    seen = {}

    async def fake(call, **kwargs):
        seen.update(kwargs, call=call)
        return "result"

    monkeypatch.setattr(low, "place_call", fake)
    settings = load_settings(
        env={"CALLCONTROL_ASTERISK_PJSIP_PORT": "5260", "CALLCONTROL_ASTERISK_PSTN_PORT": "5270"}
    )
    result = await calls.place_call(
        settings=settings,
        cell="A1-01",
        password="pw",
        pin="1234",
        dial="02079460000",
        hold=5,
        ring=2,
    )
    assert result == "result"
    assert seen["endpoints"].port == 5260 and seen["endpoints"].called_party_port == 5270
    # hold + ring + the called party's wait and keying before it accepts (1.5 s + 1.0 s)
    assert seen["ring_ms"] == 2000 and seen["call"].hold_ms == 9500
    assert seen["called_party"] == "accept"


async def test_no_password_anywhere(tmp_path) -> None:
    settings = load_settings(
        env={
            "CALLCONTROL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite3'}",
            "CALLCONTROL_BASE_DIR": str(tmp_path),
        }
    )
    with pytest.raises(SimError, match="no SIP password for cell A1-01"):
        await calls.place_call(settings=settings, cell="A1-01", pin="1234", dial="1")


@pytest.mark.parametrize(
    ("mode", "hold_ms"),
    [
        ("answer", 5000),
        # 1.5 s before keying, 1 s of keying (400 ms lead-in, tone, gap, tone): talk about 5 s
        ("accept", 7500),
        ("decline", 7500),
        ("ignore", 5000),  # waits for Asterisk's timeout: --hold must be longer than it
    ],
)
async def test_acceptance_lengthens_the_hold(monkeypatch, mode: str, hold_ms: int) -> None:
    seen = {}

    async def fake(call, **kwargs):
        seen.update(kwargs, call=call)
        return "result"

    monkeypatch.setattr(low, "place_call", fake)
    await calls.place_call(
        settings=load_settings(env={}),
        cell="A1-01",
        password="pw",
        pin="1234",
        dial="1",
        hold=5,
        called_party=mode,
    )
    assert seen["call"].hold_ms == hold_ms
    assert (seen["accept_ms"], seen["accept_digit"], seen["decline_digit"]) == (1500, "1", "2")
    assert seen["called_party"] == mode and seen["called_party_mode"] is None


async def test_accept_digit_comes_from_the_settings(monkeypatch) -> None:
    seen = {}

    async def fake(call, **kwargs):
        seen.update(kwargs, call=call)
        return "result"

    monkeypatch.setattr(low, "place_call", fake)
    settings = load_settings(env={"CALLCONTROL_BILLING_ACCEPT_DIGIT": "2"})
    await calls.place_call(
        settings=settings,
        cell="A1-01",
        password="pw",
        pin="1234",
        dial="1",
        called_party="accept",
        accept_after=2,
        dtmf_ms=100,
    )
    assert (seen["accept_ms"], seen["accept_digit"], seen["decline_digit"]) == (2000, "2", "1")
    assert seen["call"].hold_ms == 10000 + 2000 + 400 + 3 * 100


async def test_a_running_called_party_is_judged_by_its_mode(monkeypatch) -> None:
    seen = {}

    async def fake(call, **kwargs):
        seen.update(kwargs, call=call)
        return "result"

    monkeypatch.setattr(low, "place_call", fake)
    await calls.place_call(
        settings=load_settings(env={}),
        cell="A1-01",
        password="pw",
        pin="1234",
        dial="1",
        hold=5,
        called_party=None,
        called_party_mode="accept",
    )
    assert seen["called_party"] is None and seen["called_party_mode"] == "accept"
    assert seen["call"].hold_ms == 5000  # its timing is not ours to know


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "maybe"}, "must be one of"),
        ({"accept_digit": "12"}, "accept digit"),
        ({"accept_digit": "x"}, "accept digit"),
        ({"accept_digit": "3", "decline_digit": "3"}, "differ"),
        ({"accept_after": -1}, "negative"),
        ({"dtmf_ms": 10}, "50 to 2000"),
    ],
)
def test_bad_called_party_plans(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calls.called_party_plan(load_settings(env={}), **({"mode": "accept"} | changes))


def test_called_party_plan() -> None:
    plan = calls.called_party_plan(load_settings(env={}), mode="decline", accept_after=0.25)
    assert (plan.digit, plan.accept_ms, plan.keying_wait_ms()) == ("2", 250, 250 + 1000)
    plan = calls.called_party_plan(load_settings(env={}), mode="ignore")
    assert (plan.digit, plan.keying_wait_ms()) == (None, 0)
