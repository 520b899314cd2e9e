"""The authorise use case and the cell-call conversation, with a hand-written fake store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.adapters.agi.protocol import AgiHangup
from callcontrol.domain.decide import BillingContext, BillingPolicy, PrisonerFacts
from callcontrol.domain.limits import Caps, Usage
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    Decision,
    GlobalNumber,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.pin_lockout import LockState
from callcontrol.domain.pins import LockoutPolicy, PinKeys, hash_pin
from callcontrol.domain.rules import SitePolicy
from callcontrol.domain.tariffs import DEFAULT_TARIFFS, Rounding, Tariff, tariffs_by_class
from callcontrol.domain.windows import parse_windows
from callcontrol.services.authorise import (
    Authoriser,
    DecisionRecord,
    HandsetLockout,
    PinFacts,
)
from tests.services.cell_call_args import agi_args

SECRET = b"service-test-secret-0123456789"
BILLING = BillingPolicy(
    rounding=Rounding.PER_SECOND,
    max_call_s=1800,
    caps=Caps(),
    windows=(),
    wing_windows={},
    tz=ZoneInfo("Europe/London"),
)
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeStore:
    def __init__(self) -> None:
        self.handsets: dict[str, Handset] = {}
        self.prisoners: list[Prisoner] = []
        self.failures: list[tuple[str, datetime]] = []  # (cell, at)
        self.lock_states: dict[str, LockState] = {}
        self.lockouts: list[HandsetLockout] = []
        self.calls: list[str] = []  # every PIN-related call, in order: the structural proof
        self.contact_lists: dict[int, list[Contact]] = {}
        self.globals: dict[str, GlobalNumber] = {}
        self.records: list[DecisionRecord] = []
        self.active: dict[str, int] = {}  # uniqueid -> prisoner id
        self.available: dict[int, int] = {}  # prisoner id -> pence
        self.asked_days: list[tuple[datetime, datetime]] = []

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[FakeStore]:
        """The reads of one step: the fake itself (its reads below are the unit's)."""
        yield self

    async def pin_facts(self, cell: str) -> PinFacts:
        self.calls.append(f"pin_facts {cell}")
        state = self.lock_states.get(cell, LockState())
        return PinFacts(state, [p for p in self.prisoners if p.cell == cell])

    async def prisoner_facts(
        self, prisoner_id: int, day_start: datetime, week_start: datetime
    ) -> PrisonerFacts:
        return PrisonerFacts(
            contacts=tuple(await self.contacts(prisoner_id)),
            contact_max_s={},
            call_in_progress=await self.has_active_call(prisoner_id),
            billing=await self.billing_context(prisoner_id, day_start, week_start),
        )

    async def handset(self, sip_username: str) -> Handset | None:
        return self.handsets.get(sip_username)

    async def prisoners_in_cell(self, cell: str) -> Sequence[Prisoner]:
        self.calls.append(f"prisoners_in_cell {cell}")
        return [p for p in self.prisoners if p.cell == cell]

    async def pin_lock_state(self, cell: str) -> LockState:
        self.calls.append(f"pin_lock_state {cell}")
        return self.lock_states.get(cell, LockState())

    async def record_pin_failure(self, cell: str, at: datetime) -> None:
        self.calls.append(f"record_pin_failure {cell}")
        self.failures.append((cell, at))

    async def pin_failures_since(self, cell: str, since: datetime) -> Sequence[datetime]:
        self.calls.append(f"pin_failures_since {cell}")
        return [at for c, at in self.failures if c == cell and at >= since]

    async def lock_handset(self, lockout: HandsetLockout) -> None:
        self.calls.append(f"lock_handset {lockout.cell}")
        self.lockouts.append(lockout)
        self.lock_states[lockout.cell] = lockout.state

    async def reset_pin_escalation(self, cell: str, at: datetime) -> None:
        self.calls.append(f"reset_pin_escalation {cell}")
        self.lock_states[cell] = replace(self.lock_states[cell], level=0)

    async def rehash_pin(self, prisoner_id: int, old_hash: str, new_hash: str) -> bool:
        self.calls.append(f"rehash_pin {prisoner_id}")
        for i, p in enumerate(self.prisoners):
            if p.id == prisoner_id and p.pin_hash == old_hash:
                self.prisoners[i] = replace(p, pin_hash=new_hash)
                return True
        return False

    async def contacts(self, prisoner_id: int) -> Sequence[Contact]:
        return self.contact_lists.get(prisoner_id, [])

    async def global_numbers(self) -> Mapping[str, GlobalNumber]:  # the GlobalsSource too
        return self.globals

    async def tariffs(self) -> Mapping[str, Tariff]:
        return tariffs_by_class(DEFAULT_TARIFFS)

    async def has_active_call(self, prisoner_id: int) -> bool:
        return prisoner_id in self.active.values()

    async def billing_context(
        self, prisoner_id: int, day_start: datetime, week_start: datetime
    ) -> BillingContext:
        self.asked_days.append((day_start, week_start))
        return BillingContext(
            available_pence=self.available.get(prisoner_id, 0),
            usage=Usage(0, 0, 0),
            wing="A",
            prisoner_max_s=None,
        )

    async def record(self, record: DecisionRecord) -> Reason | None:
        if record.decision.outcome is Outcome.ALLOW:
            assert record.prisoner is not None and record.plan is not None
            if record.prisoner.id in self.active.values():
                return Reason.CALL_IN_PROGRESS  # as the database's unique index would say
            reserve = record.plan.limit.reserve_pence
            if reserve > self.available.get(record.prisoner.id, 0):
                return Reason.INSUFFICIENT_CREDIT  # as the ledger's conditional update would
            self.available[record.prisoner.id] -= reserve
            self.active[record.attempt.uniqueid] = record.prisoner.id
        self.records.append(record)
        return None

    async def end_call(self, uniqueid: str, cause: str, at: datetime) -> bool:
        return self.active.pop(uniqueid, None) is not None

    async def open_calls(self) -> Sequence[str]:
        return list(self.active)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeChannel:
    """What the handler sees of Asterisk: digits typed in answer to each prompt."""

    def __init__(
        self,
        endpoint: str,
        dialled: str,
        pins: list[str],
        uniqueid: str = "1.1",
        hang_up_after_prompts: int | None = None,
    ) -> None:
        self.args = agi_args(endpoint, dialled, "call-id-1", uniqueid)
        self.channel = f"PJSIP/{endpoint}-00000001"
        self.uniqueid = uniqueid
        self.pins = list(pins)
        self.prompts: list[str] = []
        self.set: list[tuple[str, str]] = []  # every SET VARIABLE, in order
        self.hang_up_after = hang_up_after_prompts
        self.commands: list[str] = []
        self.round_trips = 0  # AGI commands sent: each one waits for Asterisk's reply

    @property
    def variables(self) -> dict[str, str]:
        """The daemon's answer by field, as the dialplan reads it ({} when none was set); a
        test fails on any answer the dialplan would refuse for its shape, or on any other
        variable: the daemon sets the one answer and nothing else."""
        if not self.set:
            return {}
        assert {name for name, _ in self.set} == {cv.ANSWER}, self.set
        fields = cv.read_answer(self.set[-1][1])
        assert fields is not None, f"an answer the dialplan would not take: {self.set[-1][1]!r}"
        return fields

    async def answer(self) -> None:
        self.round_trips += 1
        self.commands.append("ANSWER")

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        # The dialplan leaves the answer to the daemon: no prompt plays on an unanswered call.
        assert "ANSWER" in self.commands, "prompted before answering"
        if self.hang_up_after is not None and len(self.prompts) >= self.hang_up_after:
            raise AgiHangup("caller hung up")
        self.round_trips += 1
        self.prompts.append(prompt)
        pin = self.pins.pop(0) if self.pins else ""
        return pin, pin == ""

    async def set_variable(self, name: str, value: str) -> None:
        self.round_trips += 1
        self.set.append((name, value))

    async def command(self, text: str) -> None:  # CHANNEL STATUS: still there
        self.round_trips += 1
        self.commands.append(text)


@pytest.fixture
def world() -> tuple[FakeStore, Clock, CellCallHandler]:
    store = FakeStore()
    store.handsets["A1-01"] = Handset("A1-01", "A1-01", True)
    store.handsets["A1-02"] = Handset("A1-02", "A1-02", False)
    store.prisoners.append(
        Prisoner(1, "A1234BC", "John Smith", hash_pin(SECRET, "A1234BC", "1234"), "A1-01", True)
    )
    store.contact_lists[1] = [Contact("+442079460000", ContactKind.SOCIAL, ContactStatus.APPROVED)]
    store.available[1] = 500
    clock = Clock()
    auth = Authoriser(
        store,
        store,
        policy=SitePolicy(),
        lockout=LockoutPolicy(),
        billing=BILLING,
        pin_secret=lambda: SECRET,
        clock=clock,
    )
    return store, clock, CellCallHandler(auth, PinPrompting(tries=3))


async def test_an_allowed_call_is_one_answer_in_four_round_trips(world) -> None:
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000", ["1234"])
    await handler(ch)
    assert ch.commands[0] == "ANSWER"  # answered once the handset is known, before the prompt
    # ANSWER, GET DATA, the one SET VARIABLE, CHANNEL STATUS (was 9: five SET VARIABLEs).
    assert ch.set == [(cv.ANSWER, "allow:approved_contact:+442079460000:1800000:yes")]
    assert ch.commands == ["ANSWER", "CHANNEL STATUS"] and ch.round_trips == 4
    # 500p at the landline rate (3.1p/min) buys more than the site's 30 minutes.
    assert ch.variables == {
        cv.REASON: "approved_contact",
        cv.NUMBER: "+442079460000",
        cv.LIMIT_MS: "1800000",
        cv.RECORD: "yes",
        cv.DECISION: cv.ALLOW,
    }
    assert store.records[0].plan is not None
    assert store.records[0].plan.limit.reserve_pence == 93  # 310 * 1800 / 6000
    assert [r.decision.reason for r in store.records] == [Reason.APPROVED_CONTACT]
    assert store.records[0].attempt.sip_call_id == "call-id-1"


async def test_unknown_and_disabled_handsets_are_refused_before_any_prompt(world) -> None:
    store, _, handler = world
    for endpoint, reason in (("Z9-99", Reason.UNKNOWN_HANDSET), ("A1-02", Reason.HANDSET_DISABLED)):
        ch = FakeChannel(endpoint, "02079460000", ["1234"])
        await handler(ch)
        assert ch.prompts == []
        assert "ANSWER" not in ch.commands  # the refusal's own prompt answers the handset
        assert ch.variables[cv.DECISION] == cv.REFUSE
        assert store.records[-1].decision.reason is reason


async def test_a_refused_call_is_one_answer_with_its_reason(world) -> None:
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460001", ["1234"])  # not on the list
    await handler(ch)
    # ANSWER, GET DATA, the one SET VARIABLE; nothing to hand over, so no CHANNEL STATUS.
    assert ch.set == [(cv.ANSWER, "refuse:not_approved")] and ch.round_trips == 3


async def test_second_try_succeeds_after_a_wrong_pin(world) -> None:
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000", ["0000", "1234"])
    await handler(ch)
    assert ch.prompts == [cv.PROMPT_PIN, cv.PROMPT_PIN_WRONG]
    assert ch.variables[cv.DECISION] == cv.ALLOW
    assert len(store.failures) == 1


async def test_three_wrong_pins_refuse_and_five_lock_the_handset(world) -> None:
    """Replaces a test that asserted the oracle as intended: the right PIN keyed after the
    fifth wrong one used to be told "locked" while wrong ones got the retry prompt. Now the
    fifth wrong PIN locks the handset, and every later try is refused alike until it unlocks."""
    store, clock, handler = world
    ch = FakeChannel("A1-01", "02079460000", ["0000", "1111", "2222"])
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    assert store.records[-1].decision.reason is Reason.WRONG_PIN
    clock.now += timedelta(minutes=1)
    ch = FakeChannel("A1-01", "02079460000", ["3333", "4444", "1234"], uniqueid="1.2")
    await handler(ch)
    # The fifth wrong PIN locked the handset: the right PIN was never asked for.
    assert ch.prompts == [cv.PROMPT_PIN, cv.PROMPT_PIN_WRONG]
    assert store.records[-1].decision.reason is Reason.PIN_LOCKED
    clock.now += timedelta(minutes=14)
    await handler(FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.3"))
    assert store.records[-1].decision.reason is Reason.PIN_LOCKED
    clock.now += timedelta(minutes=2)
    ch = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.4")
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.ALLOW


async def test_silence_is_no_pin_and_not_a_failure(world) -> None:
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000", [])
    await handler(ch)
    assert store.records[-1].decision.reason is Reason.NO_PIN
    assert store.failures == []


async def test_one_active_call_per_prisoner(world) -> None:
    store, _, handler = world
    first = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.1")
    await handler(first)
    second = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.2")
    await handler(second)
    assert second.variables[cv.DECISION] == cv.REFUSE
    assert store.records[-1].decision.reason is Reason.CALL_IN_PROGRESS
    await handler.auth.call_ended("1.1", "16 Normal Clearing")
    third = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.3")
    await handler(third)
    assert third.variables[cv.DECISION] == cv.ALLOW


async def test_race_lost_at_the_database_is_refused(world) -> None:
    """Two decisions pass the in-progress check together; the store's index refuses one."""
    store, _, handler = world
    store.active["other"] = 1

    async def no_active(prisoner_id: int) -> bool:
        return False

    store.has_active_call = no_active  # type: ignore[method-assign]
    ch = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.9")
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    assert store.records[-1].decision.reason is Reason.CALL_IN_PROGRESS


async def test_caller_hanging_up_during_the_pin_is_recorded(world) -> None:
    store, _, handler = world
    ch = FakeChannel("A1-01", "02079460000", [], hang_up_after_prompts=0)
    await handler(ch)
    assert store.records[-1].decision.reason is Reason.CALLER_HUNG_UP
    assert cv.DECISION not in ch.variables


async def test_a_failing_store_fails_closed(world) -> None:
    store, _, handler = world

    async def broken(prisoner_id: int) -> Sequence[Contact]:
        raise RuntimeError("database went away")

    store.contacts = broken  # type: ignore[method-assign]
    ch = FakeChannel("A1-01", "02079460000", ["1234"])
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    assert cv.NUMBER not in ch.variables
    assert store.records[-1].decision.reason is Reason.INTERNAL_ERROR


async def test_credit_limits_the_call_and_too_little_refuses(world) -> None:
    store, _, handler = world
    store.contact_lists[1].append(
        Contact("+447911123456", ContactKind.SOCIAL, ContactStatus.APPROVED)
    )
    store.available[1] = 10  # 10p at 6.88p/min: 91 seconds
    ch = FakeChannel("A1-01", "07911123456", ["1234"], uniqueid="1.1")
    await handler(ch)
    assert (ch.variables[cv.DECISION], ch.variables[cv.LIMIT_MS]) == (cv.ALLOW, "91000")
    await handler.auth.call_ended("1.1", "16")
    store.active.clear()
    store.available[1] = 6  # less than the first minute (7p)
    ch = FakeChannel("A1-01", "07911123456", ["1234"], uniqueid="1.2")
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.REFUSE
    assert store.records[-1].decision.reason is Reason.INSUFFICIENT_CREDIT


async def test_privileged_calls_are_free_and_need_no_credit(world) -> None:
    store, _, handler = world
    store.contact_lists[1].append(
        Contact("+442079460999", ContactKind.LEGAL, ContactStatus.APPROVED)
    )
    store.available[1] = 0
    ch = FakeChannel("A1-01", "02079460999", ["1234"])
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.ALLOW
    plan = store.records[-1].plan
    assert plan is not None and plan.free and plan.limit.reserve_pence == 0
    assert ch.variables[cv.RECORD] == "no"  # a legal call is never recorded


async def test_outside_the_calling_window_is_refused(world) -> None:
    store, clock, handler = world
    handler.auth.billing = replace(BILLING, windows=parse_windows(["08:00-11:00"]))
    clock.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # 12:00 in London
    ch = FakeChannel("A1-01", "02079460000", ["1234"])
    await handler(ch)
    assert store.records[-1].decision.reason is Reason.OUTSIDE_HOURS
    clock.now = datetime(2026, 11, 28, 10, 59, tzinfo=UTC)  # one minute left
    ch = FakeChannel("A1-01", "02079460000", ["1234"], uniqueid="1.2")
    await handler(ch)
    assert ch.variables[cv.LIMIT_MS] == "60000"


def test_decision_refuse_carries_the_reason() -> None:
    d = Decision.refuse(Reason.NOT_APPROVED, number="+442079460000")
    assert not d.allowed and d.outcome is Outcome.REFUSE


async def test_a_pin_hashed_with_a_previous_secret_is_stored_again_with_the_current_one(
    world,
) -> None:
    """After `pin-secret rotate`: the old secret is kept for checking; the first right PIN
    stores the hash again with the new secret; a wrong PIN changes nothing."""
    store, _, handler = world
    new = b"the-new-pin-secret-0123456789"
    handler.auth._pin_secret = lambda: PinKeys(new, (SECRET,))
    old_hash = store.prisoners[0].pin_hash
    ch = FakeChannel("A1-01", "02079460000", ["0000", "0000", "0000"])
    await handler(ch)
    assert store.prisoners[0].pin_hash == old_hash
    ch = FakeChannel("A1-01", "02079460000", ["1234"])
    await handler(ch)
    assert ch.variables[cv.DECISION] == cv.ALLOW
    assert store.prisoners[0].pin_hash == hash_pin(new, "A1234BC", "1234") != old_hash
    assert store.calls.count("rehash_pin 1") == 1
    ch = FakeChannel("A1-01", "02079460000", ["1234"])  # the old secret no longer needed
    handler.auth._pin_secret = lambda: new
    store.active.clear()
    await handler(ch)
    assert store.records[-1].decision.reason is not Reason.WRONG_PIN
    assert store.calls.count("rehash_pin 1") == 1
