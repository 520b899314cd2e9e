"""The cell-call and cell-refused routes take the call from base64 arguments, whole (issue 9)."""

from __future__ import annotations

import pytest

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import (
    MAX_PIN_KEYS,
    BadCallArgs,
    CellRefusedHandler,
    call_args,
)
from callcontrol.adapters.agi.protocol import AgiHangup
from callcontrol.domain.model import Reason
from tests.services.cell_call_args import agi_args, b64
from tests.services.test_authorise import FakeChannel, world  # noqa: F401 - the fixture


def test_commas_and_control_characters_stay_where_they_were_sent() -> None:
    args = agi_args("A1-01", "02079460123,30,D(1)", 'x,y"z\n@cell', "1733380000.42")
    attempt = call_args(args)
    assert attempt.dialled == "02079460123,30,D(1)"
    assert attempt.sip_call_id == 'x,y"z\n@cell'
    assert (attempt.endpoint, attempt.uniqueid) == ("A1-01", "1733380000.42")
    assert attempt.channel == "PJSIP/A1-01-00000001"


def test_bytes_that_are_not_utf8_are_kept_as_escapes() -> None:
    args = agi_args("A1-01", "", "c@x")
    args[1] = "AjD/"  # 0x02 0x30 0xff
    assert call_args(args).dialled == "\x020\\xff"


@pytest.mark.parametrize(
    "args",
    [
        [],
        agi_args("A1-01", "0207", "c")[:4],
        agi_args("A1-01", "0207", "c") + ["extra"],
        [b64("A1-01"), "02079460123", b64("c"), "1.1", b64("PJSIP/x")],  # not base64
        [b64("A1-01"), b64("0207"), b64("c"), "1.1\nagi_x: y", b64("PJSIP/x")],
    ],
)
def test_anything_but_what_the_dialplan_sends_is_refused(args: list[str]) -> None:
    with pytest.raises(BadCallArgs):
        call_args(args)


async def test_a_call_with_bad_arguments_is_refused_without_a_prompt(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000", ["1234"])
    ch.args = ["A1-01", "02079460000", "c"]  # the old, positional form
    await handler(ch)
    assert ch.prompts == [] and ch.variables == {
        cv.DECISION: cv.REFUSE,
        cv.REASON: "internal_error",
    }
    assert store.records == []


async def test_an_entry_is_read_whole_not_cut_to_the_pin_length(world) -> None:  # noqa: F811
    store, _, handler = world
    asked: list[int] = []
    ch = FakeChannel("A1-01", "02079460000", ["12340", "123", "1234"])
    original = ch.get_data

    async def get_data(prompt: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        asked.append(max_digits)
        return await original(prompt, timeout_ms, max_digits)

    ch.get_data = get_data  # type: ignore[method-assign]
    await handler(ch)
    assert asked == [MAX_PIN_KEYS] * 3
    assert len(store.failures) == 2  # 12340 and 123 are wrong PINs
    assert ch.variables[cv.DECISION] == cv.ALLOW


async def test_the_record_only_route_stores_an_invalid_number(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "0207%0A,30", [])
    ch.args = agi_args("A1-01", "0207%0A,30", "c,1@cell", "1.7")
    await CellRefusedHandler(handler.auth)(ch)
    assert ch.prompts == [] and ch.variables == {}
    (record,) = store.records
    assert record.decision.reason is Reason.INVALID_NUMBER
    assert (record.attempt.dialled, record.attempt.sip_call_id) == ("0207%0A,30", "c,1@cell")
    assert record.handset is not None and record.handset.cell == "A1-01"


async def test_an_allow_stored_after_the_handset_was_refused_is_released(world) -> None:  # noqa: F811
    """The Local channel is gone when the allow is handed over: the dialplan refused the call
    (its time was up); the open call must not keep its credit reserved."""
    store, _, handler = world
    late: list[str] = []

    async def on_late_allow(attempt) -> None:  # type: ignore[no-untyped-def]
        late.append(attempt.uniqueid)

    handler.on_late_allow = on_late_allow
    ch = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.8")

    async def dead(text: str) -> None:
        raise AgiHangup("CHANNEL: dead channel (511)")

    ch.command = dead  # type: ignore[method-assign]
    await handler(ch)
    assert store.records[-1].decision.allowed  # stored, then found late
    assert late == ["1.8"]
    live = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.9")
    await handler.auth.call_ended("1.8", "16")
    await handler(live)
    assert late == ["1.8"] and live.commands == ["ANSWER", "CHANNEL STATUS"]
