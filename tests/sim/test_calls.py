"""The one-await API: settings fill in the ports and the password."""

from __future__ import annotations

import pytest

from callcontrol.config import load_settings
from callcontrol.simulator import call as low
from callcontrol.simulator import calls
from callcontrol.simulator.sipp import SimError


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
    assert seen["ring_ms"] == 2000 and seen["call"].hold_ms == 7000
    assert seen["called_party"] == "answer"


async def test_no_password_anywhere(tmp_path) -> None:
    settings = load_settings(
        env={"CALLCONTROL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite3'}"}
    )
    with pytest.raises(SimError, match="no SIP password for cell A1-01"):
        await calls.place_call(settings=settings, cell="A1-01", pin="1234", dial="1")
