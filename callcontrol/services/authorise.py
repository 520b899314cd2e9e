"""Authorise a call from a cell handset: the use case, apart from any protocol.

The FastAGI adapter drives the conversation (prompts, digits) and calls these steps; the rules
themselves live in callcontrol.domain (rules.py for the handset and the PIN, decide.py for the
number). Each step reads what it needs in one unit of work (``CallStore.unit()``), the decision
its facts in one read; the site's global numbers and tariffs come from a GlobalsSource. Every
outcome is stored, allowed or refused, and so is a balance enquiry (the service code keyed
instead of a number: outcome service).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcontrol.domain.balance import BalanceFigures
from callcontrol.domain.decide import (
    BillingPolicy,
    CallPlan,
    CallPolicy,
    DecisionFacts,
    PrisonerFacts,
    decide_call,
    usage_bounds,
)
from callcontrol.domain.model import Decision, Handset, Outcome, Prisoner, Reason
from callcontrol.domain.pin_lockout import LockState
from callcontrol.domain.pins import LockoutPolicy, PinKeys, as_keys
from callcontrol.domain.rules import SitePolicy, check_handset, check_prisoner, match_pin
from callcontrol.services.balance_enquiry import balance_enquiry
from callcontrol.services.globals_source import GlobalsSource
from callcontrol.services.pin_guard import HandsetLockout as HandsetLockout  # re-exported
from callcontrol.services.pin_guard import PinGuard, PinLockStore

log = logging.getLogger("callcontrol.decision")


@dataclass(frozen=True)
class CallAttempt:
    """What Asterisk told us about the call being decided."""

    endpoint: str  # the authenticated SIP endpoint (the handset)
    dialled: str  # the extension as dialled
    channel: str = ""
    uniqueid: str = ""
    sip_call_id: str = ""


@dataclass(frozen=True)
class DecisionRecord:
    attempt: CallAttempt
    decision: Decision
    handset: Handset | None
    prisoner: Prisoner | None
    at: datetime
    decision_ms: float | None
    plan: CallPlan | None = None


@dataclass(frozen=True)
class Decided:
    """A stored decision on a number, with the allowed call's plan or the enquiry's figures."""

    decision: Decision
    plan: CallPlan | None = None
    figures: BalanceFigures | None = None


@dataclass(frozen=True)
class PinFacts:
    """What one PIN try reads about the handset's cell, at once: its lockout state and the
    prisoners in it (whose PINs are compared only when it is not locked)."""

    state: LockState
    prisoners: Sequence[Prisoner]


class CallUnit(Protocol):
    """One step of a call (the handset, a PIN try, the decision) on one connection: its reads,
    and the decision's write. ``CallStore.unit()`` gives it for the step and takes it back at
    its end; it is never held while waiting for the caller."""

    async def handset(self, sip_username: str) -> Handset | None: ...

    async def pin_facts(self, cell: str) -> PinFacts: ...

    async def prisoner_facts(
        self, prisoner_id: int, day_start: datetime, week_start: datetime
    ) -> PrisonerFacts:
        """Everything the decision reads about the prisoner (contacts, a call in progress,
        money, use since ``day_start`` and ``week_start``, wing, own limits)."""
        ...

    async def record(self, record: DecisionRecord) -> Reason | None:
        """Store the decision; for an allowed call also open the call and reserve its credit,
        in one transaction. A Reason when that could not be done (CALL_IN_PROGRESS: the
        prisoner already has a call; INSUFFICIENT_CREDIT: another call took the credit
        meanwhile): then nothing was stored and the caller refuses."""
        ...


class CallStore(PinLockStore, Protocol):
    """The port to the records of the call path (adapters/db/call_store.py implements it);
    the handsets' lockout records are PinLockStore's (services/pin_guard.py)."""

    def unit(self) -> AbstractAsyncContextManager[CallUnit]:
        """A unit of work for one step. Never held while waiting for the caller."""
        ...

    async def end_call(self, uniqueid: str, cause: str, at: datetime) -> bool: ...

    async def open_calls(self) -> Sequence[str]:
        """The uniqueids of calls that have no end yet."""
        ...


@dataclass(frozen=True)
class PinCheck:
    prisoner: Prisoner | None  # set when the PIN was right and the prisoner may go on
    refusal: Decision | None  # set when the call must end now
    retry: bool = False  # wrong PIN, tries left


class Authoriser:
    def __init__(
        self,
        store: CallStore,
        globals_source: GlobalsSource,
        *,
        policy: SitePolicy,
        lockout: LockoutPolicy,
        billing: BillingPolicy,
        pin_secret: Callable[[], bytes | PinKeys],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.globals = globals_source
        self.policy = policy
        self.lockout = lockout
        self.pin_guard = PinGuard(store, lockout)
        self.billing = billing
        self._pin_secret = pin_secret
        self.clock = clock
        # Called with each stored decision, after it is logged (the metrics count them).
        self.on_decided: list[Callable[[DecisionRecord], None]] = []
        self.store_failures = 0  # decisions the store could not keep (a metric)

    async def handset(self, attempt: CallAttempt) -> tuple[Handset | None, Decision | None]:
        async with self.store.unit() as unit:
            handset = await unit.handset(attempt.endpoint)
        return handset, check_handset(handset)

    async def check_pin(self, handset: Handset, pin: str, tries_left: int) -> PinCheck:
        """One PIN try on this handset. ``tries_left`` counts this one.

        The handset's lockout comes first: while it is locked, the PIN is not looked at, so a
        right and a wrong PIN get the same refusal, after the same read and nothing else (no
        secret, no hash compared). Wrong PINs count against the handset."""
        now = self.clock()
        async with self.store.unit() as unit:  # one read: the lockout and the cell's prisoners
            facts = await unit.pin_facts(handset.cell)
        state = facts.state
        if state.locked(now):
            return PinCheck(None, self._locked(state))
        if not pin:  # silence is not a wrong PIN: it does not count towards the lockout
            if tries_left > 1:
                return PinCheck(None, None, retry=True)
            return PinCheck(None, Decision.refuse(Reason.NO_PIN, detail="no PIN keyed"))
        keys = as_keys(self._pin_secret())
        prisoner = match_pin(facts.prisoners, pin, keys)
        if prisoner is None:
            locked = await self.pin_guard.wrong_pin(handset.cell, now, state)
            if locked is not None:
                return PinCheck(None, self._locked(locked))
            if tries_left > 1:
                return PinCheck(None, None, retry=True)
            return PinCheck(None, Decision.refuse(Reason.WRONG_PIN, detail="no matching PIN"))
        refusal = check_prisoner(prisoner, None, now)
        if refusal is not None:
            return PinCheck(None, refusal)
        # a successful call ends the escalation; a rotation: store it with the current key
        await self.pin_guard.right_pin(prisoner, pin, keys, now, state)
        return PinCheck(prisoner, None)

    @staticmethod
    def _locked(state: LockState) -> Decision:
        assert state.locked_until is not None
        until = state.locked_until.isoformat(timespec="seconds")
        return Decision.refuse(Reason.PIN_LOCKED, detail=f"handset locked until {until}")

    async def decide(
        self, attempt: CallAttempt, *, handset: Handset, prisoner: Prisoner, enquiry: bool
    ) -> Decided:
        """The decision on what the prisoner dialled (a number, or the balance enquiry's
        service code when ``enquiry``), stored: one unit of work reads the prisoner's facts
        and then writes the decision (with its call and reservation when allowed)."""
        started = time.perf_counter()
        now = self.clock()
        day_start, week_start = usage_bounds(now, self.billing.tz)
        policy = CallPolicy(self.policy, self.billing)
        plan: CallPlan | None = None
        figures: BalanceFigures | None = None
        # Before the unit: a GlobalsSource on the database takes a connection of its own.
        global_numbers = await self.globals.global_numbers()
        tariffs = await self.globals.tariffs()
        async with self.store.unit() as unit:
            facts = await unit.prisoner_facts(prisoner.id, day_start, week_start)
            if enquiry:  # services/balance_enquiry.py: figures to say; nothing is reserved
                decision, figures = balance_enquiry(facts, global_numbers, tariffs, policy, now)
            else:
                decision, plan = decide_call(
                    DecisionFacts(attempt.dialled, facts, global_numbers, tariffs), policy, now
                )
            decision_ms = (time.perf_counter() - started) * 1000
            decision = await self._store(
                unit, attempt, decision, handset, prisoner, plan, decision_ms
            )
        return Decided(decision, plan if decision.allowed else None, figures)

    async def finish(
        self,
        attempt: CallAttempt,
        decision: Decision,
        *,
        handset: Handset | None,
        prisoner: Prisoner | None,
        plan: CallPlan | None = None,
        decision_ms: float | None = None,
    ) -> Decision:
        """Store a decision taken apart from ``decide`` (a refusal of the handset or the PIN,
        a hang-up, a failure) in a unit of its own; return the final decision."""
        async with self.store.unit() as unit:
            return await self._store(unit, attempt, decision, handset, prisoner, plan, decision_ms)

    async def _store(
        self,
        unit: CallUnit,
        attempt: CallAttempt,
        decision: Decision,
        handset: Handset | None,
        prisoner: Prisoner | None,
        plan: CallPlan | None,
        decision_ms: float | None,
    ) -> Decision:
        """Store the decision (and open the call when allowed); return the final decision."""
        plan = plan if decision.allowed else None
        record = DecisionRecord(
            attempt, decision, handset, prisoner, self.clock(), decision_ms, plan
        )
        try:
            refused = await unit.record(record)
        except Exception:
            self.store_failures += 1  # the call is refused all the same (fail closed): counted
            raise
        if refused is not None:
            detail = (
                "another call of this prisoner is active"
                if refused is Reason.CALL_IN_PROGRESS
                else "the credit was taken by another call meanwhile"
            )
            decision = Decision.refuse(refused, number=decision.number, detail=detail)
            record = DecisionRecord(attempt, decision, handset, prisoner, record.at, decision_ms)
            await unit.record(record)
        self._log(record)
        for callback in self.on_decided:
            callback(record)
        return decision

    async def call_ended(self, uniqueid: str, cause: str) -> None:
        if await self.store.end_call(uniqueid, cause, self.clock()):
            log.info("call on channel %s ended (%s)", uniqueid, cause or "no cause")

    @staticmethod
    def _log(record: DecisionRecord) -> None:
        d = record.decision
        a = record.attempt
        who = record.prisoner.prison_number if record.prisoner else "-"
        level = logging.INFO
        if d.outcome is Outcome.REFUSE and d.reason is Reason.INTERNAL_ERROR:
            level = logging.ERROR
        plan = record.plan
        limit = (
            f"; limit {plan.limit.seconds} s ({plan.limit.limited_by}), "
            f"reserved {plan.limit.reserve_pence}p"
            if plan
            else ""
        )
        log.log(
            level,
            "%s call from handset %s prisoner %s to %r (%s): %s%s%s",
            d.outcome.value.upper(),
            a.endpoint,
            who,
            a.dialled,
            d.number or "-",
            d.reason.value,
            f" ({d.detail})" if d.detail else "",
            limit,
        )
