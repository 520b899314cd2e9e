"""PIN lockouts through the Authoriser and the cell-call conversation: no oracle while a
handset is locked, wrong PINs counted against the handset, escalation, the daily cap."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.domain.model import Contact, ContactKind, ContactStatus, Handset, Prisoner, Reason
from callcontrol.domain.pins import LockoutPolicy, hash_pin
from callcontrol.domain.rules import SitePolicy
from callcontrol.services import authorise
from callcontrol.services.authorise import Authoriser, PinCheck
from tests.services.test_authorise import BILLING, SECRET, Clock, FakeChannel, FakeStore

DIAL = "02079460000"


class World:
    def __init__(self, policy: LockoutPolicy) -> None:
        self.store = FakeStore()
        self.clock = Clock()
        self.secret_reads = 0
        s = self.store
        s.handsets["A1-01"] = Handset("A1-01", "A1-01", True)
        s.handsets["B2-07"] = Handset("B2-07", "B2-07", True)
        s.prisoners += [
            Prisoner(1, "A1234BC", "Ann", hash_pin(SECRET, "A1234BC", "1357"), "A1-01", True),
            Prisoner(2, "D5678EF", "Bea", hash_pin(SECRET, "D5678EF", "2468"), "A1-01", True),
        ]
        for pid in (1, 2):
            s.contact_lists[pid] = list(_contacts())
            s.available[pid] = 500
        self.auth = Authoriser(
            s,
            s,
            policy=SitePolicy(),
            lockout=policy,
            billing=BILLING,
            pin_secret=self._secret,
            clock=self.clock,
        )
        self.handler = CellCallHandler(self.auth, PinPrompting(tries=3))
        self._n = 0

    def _secret(self) -> bytes:
        self.secret_reads += 1
        return SECRET

    async def call(self, cell: str, *pins: str) -> FakeChannel:
        self._n += 1
        ch = FakeChannel(cell, DIAL, list(pins), uniqueid=f"1.{self._n}")
        await self.handler(ch)
        if ch.variables.get(cv.DECISION) == cv.ALLOW:
            await self.auth.call_ended(ch.uniqueid, "16")
        return ch

    def last_reason(self) -> Reason:
        return self.store.records[-1].decision.reason


def _contacts() -> list[Contact]:
    return [Contact("+442079460000", ContactKind.SOCIAL, ContactStatus.APPROVED)]


@pytest.fixture
def world() -> World:
    return World(LockoutPolicy())


async def _lock(w: World, cell: str = "A1-01") -> None:
    """Five wrong PINs within the window: the handset is locked."""
    await w.call(cell, "0000", "1111", "2222")
    await w.call(cell, "3333", "4444")
    assert w.last_reason() is Reason.PIN_LOCKED


async def test_while_locked_right_and_wrong_pins_get_exactly_the_same(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same prompts, variables, stored refusal and store calls for the right PIN, a wrong
    PIN and silence, and not one PIN comparison: nothing to learn from a locked handset."""
    w = world
    await _lock(w)
    w.clock.now += timedelta(minutes=5)
    compared: list[str] = []
    real_match = authorise.match_pin

    def spy(prisoners, pin, secret):  # type: ignore[no-untyped-def]
        compared.append(pin)
        return real_match(prisoners, pin, secret)

    monkeypatch.setattr(authorise, "match_pin", spy)
    seen = []
    for pins in (["1357"], ["9999"], ["2468"], [""]):
        w.store.calls.clear()
        before = w.secret_reads
        ch = await w.call("A1-01", *pins)
        record = w.store.records[-1]
        seen.append(
            (
                ch.prompts,
                ch.variables,
                record.decision,
                record.prisoner,
                list(w.store.calls),
                w.secret_reads - before,
            )
        )
    assert all(s == seen[0] for s in seen), seen
    prompts, variables, decision, prisoner, calls, secret_reads = seen[0]
    assert prompts == [cv.PROMPT_PIN]
    assert variables == {cv.REASON: "pin_locked", cv.DECISION: cv.REFUSE}
    assert decision.reason is Reason.PIN_LOCKED and prisoner is None
    # One read, the same whatever the PIN (the lockout and the cell's prisoners together); no
    # failure stored, no hash compared (the secret is never asked for).
    assert calls == ["pin_facts A1-01"]
    assert (secret_reads, compared) == (0, [])
    # And at the seam itself: one PinCheck, whatever the PIN.
    checks = [
        await w.auth.check_pin(w.store.handsets["A1-01"], pin, tries_left=t)
        for pin in ("1357", "0000", "")
        for t in (1, 3)
    ]
    assert len(set(checks)) == 1 and checks[0] == PinCheck(None, decision)
    assert w.store.lockouts and len(w.store.lockouts) == 1  # guessing on did not extend it


async def test_wrong_pins_count_against_the_handset_not_the_prisoners(world: World) -> None:
    """Guessing on A1-01's handset locks that handset only: its prisoners' calls from another
    handset go through (before: every prisoner in the cell was locked wherever they called)."""
    w = world
    await _lock(w)
    w.store.prisoners[0] = replace(w.store.prisoners[0], cell="B2-07")  # Ann moves to B2-07
    ch = await w.call("B2-07", "1357")
    assert ch.variables[cv.DECISION] == cv.ALLOW
    assert [c for c, _ in w.store.failures] == ["A1-01"] * 5
    assert [lo.cell for lo in w.store.lockouts] == ["A1-01"]


async def test_lockouts_grow_until_a_successful_call_resets_them() -> None:
    w = World(LockoutPolicy(daily_failures=0))
    lengths = []
    for _ in range(4):
        await _lock(w)
        lockout = w.store.lockouts[-1]
        assert lockout.state.locked_until is not None
        lengths.append(lockout.state.locked_until - lockout.at)
        w.clock.now = lockout.state.locked_until
    assert lengths == [timedelta(minutes=m) for m in (15, 30, 60, 120)]
    assert w.store.lockouts[-1].state.level == 4
    ch = await w.call("A1-01", "1357")  # right PIN, not locked: a successful call
    assert ch.variables[cv.DECISION] == cv.ALLOW
    await _lock(w)
    lockout = w.store.lockouts[-1]
    assert (lockout.state.level, lockout.state.locked_until - lockout.at) == (
        1,
        timedelta(minutes=15),
    )


async def test_the_escalation_is_capped() -> None:
    policy = LockoutPolicy(daily_failures=0, growth=10, max_lockout=timedelta(hours=3))
    w = World(policy)
    for _ in range(3):
        await _lock(w)
        w.clock.now = w.store.lockouts[-1].state.locked_until
    lengths = [lo.state.locked_until - lo.at for lo in w.store.lockouts]  # type: ignore[operator]
    assert lengths == [timedelta(minutes=15), timedelta(minutes=150), timedelta(hours=3)]


async def test_a_cellmate_resetting_with_their_own_pin_still_meets_the_daily_cap(
    world: World,
) -> None:
    """Bea guesses at Ann's PIN, and after each lockout makes a call of her own (which resets
    the escalation): the eighth wrong PIN in a day locks the handset until the first of them
    is a day old."""
    w = world
    start = w.clock.now
    await _lock(w)  # wrong PINs 1-5 at `start`
    w.clock.now = w.store.lockouts[-1].state.locked_until  # type: ignore[assignment]
    assert (await w.call("A1-01", "2468")).variables[cv.DECISION] == cv.ALLOW  # Bea's own
    await w.call("A1-01", "5555", "6666", "7777")  # wrong PINs 6-8
    assert w.last_reason() is Reason.PIN_LOCKED
    lockout = w.store.lockouts[-1]
    assert lockout.state.level == 1  # the escalation was reset by her call...
    assert lockout.state.locked_until == start + timedelta(days=1)  # ...not the daily cap
    assert lockout.failures == 8


async def test_silence_is_not_a_wrong_pin(world: World) -> None:
    w = world
    for _ in range(3):
        await w.call("A1-01", "", "", "")
        assert w.last_reason() is Reason.NO_PIN
    assert w.store.failures == [] and w.store.lockouts == []


async def test_a_suspended_prisoners_right_pin_does_not_reset_the_escalation() -> None:
    w = World(LockoutPolicy(daily_failures=0))
    await _lock(w)
    w.clock.now = w.store.lockouts[-1].state.locked_until  # type: ignore[assignment]
    w.store.prisoners[0] = replace(w.store.prisoners[0], active=False)
    await w.call("A1-01", "1357")
    assert w.last_reason() is Reason.PRISONER_SUSPENDED
    await _lock(w)
    assert w.store.lockouts[-1].state.level == 2
