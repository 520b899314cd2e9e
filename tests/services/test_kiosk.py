"""The kiosk's sign-in and PIN change, with fakes: the handset's lockout shared (one budget per
cell, whichever avenue), no oracle (the same answer after the same hash work), and the PIN
rules."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from callcontrol.domain import pins
from callcontrol.domain.kiosk import NewPinProblem
from callcontrol.domain.model import Handset, Prisoner, Reason
from callcontrol.domain.pins import LockoutPolicy, hash_pin, pin_matches
from callcontrol.domain.rules import SitePolicy, matching_prisoners
from callcontrol.services.authorise import Authoriser
from callcontrol.services.call_history import HistoryFilter, HistoryRow
from callcontrol.services.errors import Invalid, SharedPin
from callcontrol.services.kiosk import KioskService, PinChange, SessionEnded
from callcontrol.services.kiosk_ports import KioskRefused
from callcontrol.services.views import (
    ContactView,
    Entry,
    Money,
    PrisonerView,
    StatementLine,
)
from tests.services.test_authorise import BILLING, SECRET, T0, Clock, FakeStore

ANN, BEA, CAL = "A1234BC", "D5678EF", "G9012HI"
ANN_PIN, BEA_PIN, CAL_PIN = "1357", "2468", "3579"
POLICY = LockoutPolicy()  # the defaults: 5 in 15 min, 8 a day


class FakeKioskStore:
    """The kiosk's own port and the operator's services it calls, over the authoriser's fake
    (one list of prisoners for the handset and the kiosk)."""

    def __init__(self, pins_store: FakeStore) -> None:
        self.pins = pins_store
        self.changed: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, str, str]] = []  # prisoner, number, kind, via

    def _by_number(self, prison_number: str) -> Prisoner | None:
        return next((p for p in self.pins.prisoners if p.prison_number == prison_number), None)

    # KioskStore
    async def account(self, prison_number: str) -> Prisoner | None:
        self.pins.calls.append("account")
        return self._by_number(prison_number)

    async def cellmates(self, prisoner: Prisoner) -> Sequence[Prisoner]:
        return [p for p in self.pins.prisoners if p.cell == prisoner.cell and p.id != prisoner.id]

    # OwnPin (PrisonerService.set_own_pin)
    async def set_own_pin(self, prison_number: str, pin: str, via: str) -> PrisonerView:
        me = self._by_number(prison_number)
        assert me is not None and via == "kiosk"
        if matching_prisoners(await self.cellmates(me), pin, SECRET):
            raise SharedPin("a cellmate has it")
        new = replace(me, pin_hash=hash_pin(SECRET, prison_number, pin))
        ps = self.pins.prisoners
        ps[:] = [new if p.id == me.id else p for p in ps]
        self.changed.append((prison_number, new.pin_hash))
        return PrisonerView(prison_number, me.name, me.cell, me.active, "")

    # Accounts
    async def balance(self, prison_number: str) -> Money:
        me = self._by_number(prison_number)
        assert me is not None
        return Money(me.id * 100, 0, me.id * 100)

    async def statement(self, prison_number: str) -> list[StatementLine]:
        topup = Entry(1, prison_number, "topup", 100, 100, "k", prison_number, None, T0, "staff")
        return [StatementLine(topup, None, None, None, None, None, T0, 100)]

    # Contacts
    async def of(self, prison_number: str) -> list[ContactView]:
        return [
            ContactView(who, n, k, "pending", "")
            for who, n, k, _ in self.requests
            if who == prison_number
        ]

    async def request(
        self, prison_number: str, number: str, kind: str, label: str, via: str
    ) -> ContactView:
        if number == "999":
            raise Invalid("999 is a short code")
        self.requests.append((prison_number, number, kind, via))
        return ContactView(prison_number, number, kind, "pending", label)

    # HistoryReader
    async def history(self, query: HistoryFilter) -> Sequence[HistoryRow]:
        return [
            HistoryRow(
                1, 1, T0, "A1-01", "A1-01", query.prisoner, "020", "+4420", "allow", "x", False
            )
        ]


class World:
    def __init__(self, policy: LockoutPolicy = POLICY) -> None:
        self.pins = FakeStore()
        self.clock = Clock()
        s = self.pins
        s.handsets["A1-01"] = Handset("A1-01", "A1-01", True)
        s.prisoners += [
            Prisoner(1, ANN, "Ann", hash_pin(SECRET, ANN, ANN_PIN), "A1-01", True),
            Prisoner(2, BEA, "Bea", hash_pin(SECRET, BEA, BEA_PIN), "A1-01", True),
            Prisoner(3, CAL, "Cal", hash_pin(SECRET, CAL, CAL_PIN), "B2-07", True),
        ]
        self.store = FakeKioskStore(s)
        k = self.store
        self.kiosk = KioskService(
            k,
            s,
            accounts=k,
            contacts=k,
            prisoners=k,
            history=k,
            lockout=policy,
            pin_secret=lambda: SECRET,
            clock=self.clock,
        )
        self.auth = Authoriser(
            s,
            s,
            policy=SitePolicy(),
            lockout=policy,
            billing=BILLING,
            pin_secret=lambda: SECRET,
            clock=self.clock,
        )

    def suspend(self, number: str) -> None:
        ps = self.pins.prisoners
        ps[:] = [replace(p, active=False) if p.prison_number == number else p for p in ps]

    async def handset(self, pin: str) -> Reason | None:
        """A PIN keyed on cell A1-01's handset: None when it lets the call go on."""
        check = await self.auth.check_pin(self.pins.handsets["A1-01"], pin, tries_left=1)
        return None if check.prisoner else check.refusal.reason  # type: ignore[union-attr]


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every PIN HMAC computed (the work a try costs), by prison number."""
    done: list[str] = []
    real = pins._hmac

    def counted(secret: bytes, prison_number: str, pin: str) -> str:
        done.append(prison_number)
        return real(secret, prison_number, pin)

    monkeypatch.setattr(pins, "_hmac", counted)
    yield done


async def test_the_right_prison_number_and_pin_sign_in() -> None:
    w = World()
    user = await w.kiosk.sign_in(f"  {ANN} ", ANN_PIN)
    assert user is not None and (user.prison_number, user.name) == (ANN, "Ann")
    assert await w.kiosk.current(user) is not None
    assert w.pins.failures == []


async def test_no_oracle_every_refusal_is_the_same_answer_after_one_hash(
    hashes: list[str],
) -> None:
    w = World()
    w.pins.prisoners.append(
        Prisoner(4, "S0000SS", "Sus", hash_pin(SECRET, "S0000SS", "1470"), "A1-01", False)
    )
    w.pins.prisoners.append(
        Prisoner(5, "N0000NN", "Nocell", hash_pin(SECRET, "N0000NN", "1470"), None, True)
    )
    # Lock cell B2-07 by five wrong PINs for Cal.
    for _ in range(5):
        assert await w.kiosk.sign_in(CAL, "9999") is None
    assert w.pins.lock_states["B2-07"].locked(w.clock.now)
    attempts = {
        "unknown number": ("Z9999ZZ", "1357"),
        "unknown, lower case": (ANN.lower(), ANN_PIN),
        "not a number at all": ("../../etc/passwd", ANN_PIN),
        "wrong PIN": (ANN, "1358"),
        "suspended, right PIN": ("S0000SS", "1470"),
        "no cell, right PIN": ("N0000NN", "1470"),
        "locked, right PIN": (CAL, CAL_PIN),
        "locked, wrong PIN": (CAL, "1111"),
    }
    for what, (number, pin) in attempts.items():
        hashes.clear()
        assert await w.kiosk.sign_in(number, pin) is None, what
        assert len(hashes) == 1, (what, hashes)
    hashes.clear()
    assert await w.kiosk.sign_in(ANN, ANN_PIN) is not None
    assert len(hashes) == 1  # and the right one costs the same


async def test_an_unknown_number_makes_the_same_store_calls_as_a_wrong_pin() -> None:
    w = World()
    w.pins.calls.clear()
    await w.kiosk.sign_in("Z9999ZZ", "1111")
    unknown = [c.split()[0] for c in w.pins.calls]
    w.pins.calls.clear()
    await w.kiosk.sign_in(ANN, "1111")
    wrong = [c.split()[0] for c in w.pins.calls]
    assert (
        unknown
        == wrong
        == [
            "account",
            "pin_lock_state",
            "pin_failures_since",
            "record_pin_failure",
        ]
    )
    # The unknown number's try is counted against no handset: it locks nobody, ever.
    assert [cell for cell, _ in w.pins.failures] == ["", "A1-01"]


async def test_kiosk_tries_count_against_the_cell_handset_with_the_handset_tries() -> None:
    w = World()
    for _ in range(3):
        assert await w.handset("9999") is Reason.WRONG_PIN
    assert await w.kiosk.sign_in(BEA, "9999") is None
    assert w.pins.lockouts == []
    assert await w.kiosk.sign_in(BEA, "9998") is None  # the 5th wrong PIN on the cell: locked
    [lockout] = w.pins.lockouts  # the handset's own lockout: its alert and audit entry
    assert (lockout.cell, lockout.failures, lockout.state.level) == ("A1-01", 5, 1)
    assert await w.handset(ANN_PIN) is Reason.PIN_LOCKED  # the handset too
    assert await w.kiosk.sign_in(ANN, ANN_PIN) is None  # and the kiosk, for every cellmate
    assert await w.kiosk.sign_in(CAL, CAL_PIN) is not None  # another cell: not touched
    # It ends by itself: not for ever.
    w.clock.now += POLICY.lockout
    assert await w.kiosk.sign_in(ANN, ANN_PIN) is not None
    assert await w.handset(BEA_PIN) is None


async def test_tries_sent_at_once_get_no_more_than_the_lockout_allows() -> None:
    w = World()
    reads = w.pins.pin_failures_since

    async def slow_read(cell: str, since: datetime) -> Sequence[datetime]:
        await asyncio.sleep(0)  # a database round trip: other tries run meanwhile
        return await reads(cell, since)

    w.pins.pin_failures_since = slow_read  # type: ignore[method-assign]
    answers = await asyncio.gather(*(w.kiosk.sign_in(ANN, f"{9000 + n}") for n in range(30)))
    assert answers == [None] * 30
    assert len(w.pins.failures) == POLICY.failures  # the rest found the cell locked
    assert len(w.pins.lockouts) == 1


async def test_the_day_cap_spans_the_handset_and_the_kiosk() -> None:
    """A cellmate who resets the escalation with their own PIN still gets only the handset's
    day's wrong PINs on the cell, handset and kiosk together."""
    w = World()
    wrong = 0
    for _ in range(40):
        if w.pins.lock_states.get("A1-01") and w.pins.lock_states["A1-01"].locked(w.clock.now):
            w.clock.now = w.pins.lock_states["A1-01"].locked_until  # type: ignore[assignment]
            assert await w.handset(BEA_PIN) is None  # Bea's own call: escalation back to 1
        wrong += 1
        if wrong % 2:
            await w.kiosk.sign_in(ANN, f"{9000 + wrong}")
        else:
            await w.handset(f"{9000 + wrong}")
        if w.clock.now - w.pins.failures[0][1] >= timedelta(days=1):
            break
    first = w.pins.failures[0][1]
    in_first_day = [at for _, at in w.pins.failures if at < first + timedelta(days=1)]
    assert len(in_first_day) == POLICY.daily_failures


async def test_a_suspended_prisoner_is_refused_and_no_wrong_pin_is_counted() -> None:
    w = World()
    w.suspend(ANN)
    assert await w.kiosk.sign_in(ANN, ANN_PIN) is None
    assert w.pins.failures == []


async def test_a_session_ends_when_the_prisoner_is_suspended_or_moved_out() -> None:
    w = World()
    user = await w.kiosk.sign_in(ANN, ANN_PIN)
    assert user is not None
    assert (await w.kiosk.money(user)).balance == 100
    w.suspend(ANN)
    assert await w.kiosk.current(user) is None
    with pytest.raises(SessionEnded):
        await w.kiosk.money(user)


async def test_every_read_is_of_the_session_prisoner() -> None:
    w = World()
    ann = await w.kiosk.sign_in(ANN, ANN_PIN)
    cal = await w.kiosk.sign_in(CAL, CAL_PIN)
    assert ann and cal
    await w.kiosk.request_contact(ann, "02079460000", "social", "Mum")
    assert [c.number for c in await w.kiosk.contacts_of(ann)] == ["02079460000"]
    assert await w.kiosk.contacts_of(cal) == []
    assert w.store.requests == [(ANN, "02079460000", "social", "kiosk")]
    assert (await w.kiosk.statement(cal))[0].kind == "topup"
    assert [c.number for c in await w.kiosk.calls(cal)] == ["+4420"]
    with pytest.raises(KioskRefused):
        await w.kiosk.request_contact(ann, "999", "social", "")
    with pytest.raises(KioskRefused):
        await w.kiosk.request_contact(ann, "02079460001", "anything", "")


# --- changing the PIN ---------------------------------------------------------------------------


async def _ann(w: World):  # type: ignore[no-untyped-def]
    user = await w.kiosk.sign_in(ANN, ANN_PIN)
    assert user is not None
    return user


async def test_a_new_pin_works_on_the_handset_at_once_and_the_old_one_no_longer() -> None:
    w = World()
    user = await _ann(w)
    result = await w.kiosk.change_pin(user, ANN_PIN, "2580", "2580")
    assert result.outcome is PinChange.CHANGED
    assert await w.kiosk.current(user) is None  # the session ends with the PIN change
    assert await w.handset("2580") is None
    assert await w.handset(ANN_PIN) is Reason.WRONG_PIN
    assert await w.kiosk.sign_in(ANN, "2580") is not None


@pytest.mark.parametrize(
    ("new", "again", "problem"),
    [
        ("25801", "25801", NewPinProblem.FORMAT),
        ("25a0", "25a0", NewPinProblem.FORMAT),
        ("2580", "2581", NewPinProblem.MISMATCH),
        ("1123", "1123", NewPinProblem.WEAK),
        ("4321", "4321", NewPinProblem.WEAK),
        (ANN_PIN, ANN_PIN, NewPinProblem.SAME),
    ],
)
async def test_the_pin_rules(new: str, again: str, problem: NewPinProblem) -> None:
    w = World()
    user = await _ann(w)
    result = await w.kiosk.change_pin(user, ANN_PIN, new, again)
    assert (result.outcome, result.problem) == (PinChange.REFUSED, problem)
    assert w.store.changed == [] and w.pins.failures == []
    assert await w.kiosk.current(user) is not None  # a rule broken: the session goes on


async def test_a_cellmates_pin_is_refused_and_counted_as_a_wrong_pin() -> None:
    w = World()
    user = await _ann(w)
    result = await w.kiosk.change_pin(user, ANN_PIN, BEA_PIN, BEA_PIN)
    assert (result.outcome, result.problem) == (PinChange.REFUSED, NewPinProblem.TAKEN)
    assert [cell for cell, _ in w.pins.failures] == ["A1-01"]  # it told her Bea has it
    assert w.store.changed == []
    # Cal's PIN, in another cell, is no cellmate's: allowed.
    assert (await w.kiosk.change_pin(user, ANN_PIN, CAL_PIN, CAL_PIN)).outcome is PinChange.CHANGED


async def test_a_wrong_old_pin_counts_and_ends_the_session() -> None:
    w = World()
    user = await _ann(w)
    result = await w.kiosk.change_pin(user, "9999", "2580", "2580")
    assert result.outcome is PinChange.WRONG_OLD
    assert [cell for cell, _ in w.pins.failures] == ["A1-01"]
    assert w.store.changed == []


async def test_no_pin_is_compared_while_the_cell_is_locked(hashes: list[str]) -> None:
    w = World()
    user = await _ann(w)
    for _ in range(5):
        await w.handset("9999")
    hashes.clear()
    result = await w.kiosk.change_pin(user, ANN_PIN, "2580", "2580")
    assert result.outcome is PinChange.LOCKED
    assert hashes == [] and w.store.changed == []
    assert pin_matches(SECRET, ANN, ANN_PIN, w.pins.prisoners[0].pin_hash)
