"""The balance enquiry in the cell-call conversation (issue 11, part 2): the service code after
the PIN says the available credit and the minutes left today; no call is placed. The PIN rules
apply exactly as for a call, and a refused enquiry gives away nothing a refused call would not."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.adapters.http.metrics import SERVICE_REASONS
from callcontrol.domain.decide import BillingContext
from callcontrol.domain.limits import Caps, Usage
from callcontrol.domain.model import Outcome, Prisoner, Reason
from callcontrol.domain.pin_lockout import LockState
from tests.services.test_authorise import BILLING, T0, FakeChannel, FakeStore, world  # noqa: F401

FIGURES = (cv.BALANCE_NEGATIVE, cv.BALANCE_POUNDS, cv.BALANCE_PENCE, cv.MINUTES_LEFT)


def with_code(
    handler: CellCallHandler, code: str = "*100", two_stage: str = "0", caps: Caps | None = None
) -> CellCallHandler:
    auth = handler.auth
    if caps is not None:
        auth.billing = replace(BILLING, caps=caps)
    prompting = PinPrompting(tries=3, two_stage_number=two_stage, balance_code=code)
    return CellCallHandler(auth, prompting)


def used(store: FakeStore, usage: Usage) -> None:
    """The prisoner has used this much today (the fake's billing context reports none)."""
    plain = store.billing_context

    async def billing_context(
        prisoner_id: int, day_start: datetime, week_start: datetime
    ) -> BillingContext:
        return replace(await plain(prisoner_id, day_start, week_start), usage=usage)

    store.billing_context = billing_context  # type: ignore[method-assign]


def said(ch: FakeChannel) -> dict[str, str]:
    return {name: ch.variables[name] for name in FIGURES}


@pytest.mark.parametrize("dialled", ["*100", "*100#"])
async def test_the_code_en_bloc_says_the_balance_and_places_no_call(world, dialled) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", dialled, ["1234"])
    await with_code(handler)(ch)
    assert ch.prompts == [cv.PROMPT_PIN]
    # 500p; no caps: 500p at the landline rate of the one contact buys 161 min (9677 s), less
    # than the 12 h to midnight.
    assert said(ch) == {
        cv.BALANCE_NEGATIVE: "0",
        cv.BALANCE_POUNDS: "5",
        cv.BALANCE_PENCE: "0",
        cv.MINUTES_LEFT: "161",
    }
    assert ch.variables[cv.REASON] == "balance_enquiry"
    assert ch.variables[cv.DECISION] == cv.BALANCE
    assert cv.NUMBER not in ch.variables and cv.LIMIT_MS not in ch.variables
    assert ch.commands == ["ANSWER"]  # for the prompt; no CHANNEL STATUS: nothing was allowed
    # ANSWER, GET DATA, one SET VARIABLE (was 8: six SET VARIABLEs).
    assert ch.set == [(cv.ANSWER, "balance:balance_enquiry:0:5:0:161")] and ch.round_trips == 3
    [record] = store.records
    d = record.decision
    assert (d.outcome, d.reason, d.number, record.plan) == (
        Outcome.SERVICE,
        Reason.BALANCE_ENQUIRY,
        None,
        None,
    )
    assert d.detail.startswith("available 500p; 161 min left today (limited by credit")
    assert record.attempt.dialled == dialled and record.prisoner is not None
    assert store.active == {} and store.available[1] == 500  # nothing opened, nothing reserved


async def test_the_code_keyed_in_two_stages_is_the_same_enquiry(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "0", ["1234", "*100"])
    await with_code(handler)(ch)
    assert ch.prompts == [cv.PROMPT_PIN, cv.PROMPT_NUMBER]
    assert ch.variables[cv.DECISION] == cv.BALANCE
    assert said(ch)[cv.BALANCE_POUNDS] == "5"
    [record] = store.records
    assert record.decision.outcome is Outcome.SERVICE and record.attempt.dialled == "*100"


async def test_the_daily_allowance_and_pence(world) -> None:  # noqa: F811
    store, _, handler = world
    store.available[1] = 420
    used(store, Usage(1, 300, 300))  # 5 of 30 minutes used today
    ch = FakeChannel("A1-01", "*100", ["1234"])
    await with_code(handler, caps=Caps(0, 30, 0))(ch)
    assert said(ch) == {
        cv.BALANCE_NEGATIVE: "0",
        cv.BALANCE_POUNDS: "4",
        cv.BALANCE_PENCE: "20",
        cv.MINUTES_LEFT: "25",
    }


async def test_the_allowance_used_up(world) -> None:  # noqa: F811
    store, _, handler = world
    used(store, Usage(2, 1830, 1830))
    ch = FakeChannel("A1-01", "*100", ["1234"])
    await with_code(handler, caps=Caps(0, 30, 0))(ch)
    assert said(ch)[cv.MINUTES_LEFT] == "0"
    assert "limited by daily_minutes" in store.records[0].decision.detail


async def test_a_negative_balance_is_said_as_minus_with_its_size(world) -> None:  # noqa: F811
    store, _, handler = world
    store.available[1] = -250
    ch = FakeChannel("A1-01", "*100", ["1234"])
    await with_code(handler)(ch)
    assert said(ch) == {
        cv.BALANCE_NEGATIVE: "1",
        cv.BALANCE_POUNDS: "2",
        cv.BALANCE_PENCE: "50",
        cv.MINUTES_LEFT: "0",
    }
    assert all(value.isdigit() for value in said(ch).values())  # whole numbers only


async def test_a_wrong_pin_counts_and_the_enquiry_is_refused_like_a_call(world) -> None:  # noqa: F811
    store, _, handler = world
    code = with_code(handler)
    enquiry = FakeChannel("A1-01", "*100", ["0000", "1111", "2222"])
    await code(enquiry)
    assert len(store.failures) == 3  # counted towards the handset's lockout
    store.failures.clear()  # the same again with a number, from the same state
    call = FakeChannel("A1-01", "02079460000", ["0000", "1111", "2222"], uniqueid="1.2")
    await code(call)
    assert len(store.failures) == 3
    assert enquiry.prompts == call.prompts
    assert enquiry.variables == call.variables == {cv.REASON: "wrong_pin", cv.DECISION: "refuse"}
    assert [r.decision.reason for r in store.records] == [Reason.WRONG_PIN] * 2


async def test_wrong_pins_keyed_for_enquiries_lock_the_handset(world) -> None:  # noqa: F811
    store, clock, handler = world
    code = with_code(handler)
    await code(FakeChannel("A1-01", "*100", ["0000", "1111", "2222"]))
    clock.now += timedelta(minutes=1)
    ch = FakeChannel("A1-01", "*100", ["3333", "4444", "1234"], uniqueid="1.2")
    await code(ch)
    assert ch.prompts == [cv.PROMPT_PIN, cv.PROMPT_PIN_WRONG]  # locked at the fifth
    assert ch.variables == {cv.REASON: "pin_locked", cv.DECISION: "refuse"}
    assert len(store.lockouts) == 1


async def test_a_locked_handset_gets_the_call_s_refusal_and_no_figures(world) -> None:  # noqa: F811
    store, _, handler = world
    store.lock_states["A1-01"] = LockState(locked_until=T0 + timedelta(minutes=5), level=1)
    secret_asked: list[bool] = []
    handler.auth._pin_secret = lambda: secret_asked.append(True) or b"unused"
    outcomes = []
    for dialled in ("*100", "02079460000"):
        ch = FakeChannel("A1-01", dialled, ["1234"])
        await with_code(handler)(ch)  # the right PIN: not even looked at
        outcomes.append((ch.prompts, ch.variables))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == {cv.REASON: "pin_locked", cv.DECISION: "refuse"}
    assert secret_asked == []  # no PIN compared while locked (the secret never asked for)


async def test_disabled_handset_and_suspended_prisoner_hear_the_call_s_refusal(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-02", "*100", ["1234"])  # a disabled handset
    await with_code(handler)(ch)
    assert ch.prompts == [] and ch.variables == {
        cv.REASON: "handset_disabled",
        cv.DECISION: "refuse",
    }
    store.prisoners[0] = Prisoner(**{**store.prisoners[0].__dict__, "active": False})
    ch = FakeChannel("A1-01", "*100", ["1234"])
    await with_code(handler)(ch)
    assert ch.variables == {cv.REASON: "prisoner_suspended", cv.DECISION: "refuse"}
    assert [r.decision.outcome for r in store.records] == [Outcome.REFUSE, Outcome.REFUSE]


@pytest.mark.parametrize(("code", "dialled"), [("", "*100"), ("*100", "*1002")])
async def test_off_the_code_or_beside_it_is_a_number_like_any_other(world, code, dialled) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", dialled, ["1234"])
    await with_code(handler, code=code)(ch)
    assert ch.variables == {cv.REASON: "invalid_number", cv.DECISION: cv.REFUSE}
    assert store.records[0].decision.outcome is Outcome.REFUSE


async def test_an_ordinary_call_is_decided_as_before(world) -> None:  # noqa: F811
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000", ["1234"])
    await with_code(handler)(ch)
    assert ch.variables[cv.DECISION] == cv.ALLOW
    assert not set(FIGURES) & set(ch.variables)


async def test_a_failing_store_refuses_the_enquiry(world) -> None:  # noqa: F811
    store, _, handler = world

    async def broken(prisoner_id: int) -> list[object]:
        raise RuntimeError("database gone")

    store.contacts = broken  # type: ignore[method-assign]
    ch = FakeChannel("A1-01", "*100", ["1234"])
    await with_code(handler)(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    assert not set(FIGURES) & set(ch.variables)
    assert store.records[0].decision.reason is Reason.INTERNAL_ERROR


def test_the_metrics_count_enquiries_as_service() -> None:
    assert SERVICE_REASONS == {Reason.BALANCE_ENQUIRY}
