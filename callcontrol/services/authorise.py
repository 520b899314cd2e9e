"""Authorise a call from a cell handset: the use case, apart from any protocol.

The FastAGI adapter drives the conversation (prompts, digits) and calls these steps; the rules
themselves live in callcontrol.domain.rules. Every outcome is stored, allowed or refused, and
so is a balance enquiry (the service code keyed instead of a number: outcome service).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from callcontrol.domain.balance import BalanceFigures
from callcontrol.domain.limits import CallLimit, Caps, Usage, call_limit
from callcontrol.domain.model import (
    Contact,
    Decision,
    GlobalNumber,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.numbers import destination_class
from callcontrol.domain.pin_lockout import LockState
from callcontrol.domain.pins import LockoutPolicy, PinKeys, as_keys
from callcontrol.domain.rules import (
    SitePolicy,
    check_handset,
    check_prisoner,
    decide_number,
    match_pin,
)
from callcontrol.domain.tariffs import Rounding, Tariff, rate_for
from callcontrol.domain.windows import (
    Window,
    local_day_bounds,
    local_week_start,
    seconds_left_in_window,
    windows_for_wing,
)
from callcontrol.services.balance_enquiry import balance_enquiry
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
class CallPlan:
    """How an allowed call is limited and paid for: fixed at the decision, used to settle."""

    limit: CallLimit
    rate: int  # hundredths of a penny a minute
    destination_class: str
    rounding: Rounding
    free: bool


@dataclass(frozen=True)
class BillingPolicy:
    rounding: Rounding
    max_call_s: int
    caps: Caps
    windows: tuple[Window, ...]
    wing_windows: Mapping[str, tuple[Window, ...]]
    tz: ZoneInfo


@dataclass(frozen=True)
class BillingContext:
    """What the store knows of the prisoner's money and use, for one decision."""

    available_pence: int
    usage: Usage
    wing: str
    prisoner_max_s: int | None
    contact_max_s: int | None
    tariffs: Mapping[str, Tariff]


@dataclass(frozen=True)
class DecisionRecord:
    attempt: CallAttempt
    decision: Decision
    handset: Handset | None
    prisoner: Prisoner | None
    at: datetime
    decision_ms: float | None
    plan: CallPlan | None = None


class CallStore(PinLockStore, Protocol):
    """The port to the records the decision needs (adapters/db/call_store.py implements it);
    the handsets' lockout records are PinLockStore's (services/pin_guard.py)."""

    async def handset(self, sip_username: str) -> Handset | None: ...

    async def prisoners_in_cell(self, cell: str) -> Sequence[Prisoner]: ...

    async def contacts(self, prisoner_id: int) -> Sequence[Contact]: ...

    async def global_numbers(self) -> Mapping[str, GlobalNumber]: ...

    async def has_active_call(self, prisoner_id: int) -> bool: ...

    async def billing_context(
        self, prisoner_id: int, number: str, day_start: datetime, week_start: datetime
    ) -> BillingContext: ...

    async def record(self, record: DecisionRecord) -> Reason | None:
        """Store the decision; for an allowed call also open the call and reserve its credit,
        in one transaction. A Reason when that could not be done (CALL_IN_PROGRESS: the
        prisoner already has a call; INSUFFICIENT_CREDIT: another call took the credit
        meanwhile): then nothing was stored and the caller refuses."""
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
        *,
        policy: SitePolicy,
        lockout: LockoutPolicy,
        billing: BillingPolicy,
        pin_secret: Callable[[], bytes | PinKeys],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.policy = policy
        self.lockout = lockout
        self.pin_guard = PinGuard(store, lockout)
        self.billing = billing
        self._pin_secret = pin_secret
        self.clock = clock
        # Called with each stored decision, after it is logged (the metrics count them).
        self.on_decided: list[Callable[[DecisionRecord], None]] = []
        self.store_failures = 0  # decisions the store could not keep (a metric)

    def reading(self) -> AbstractAsyncContextManager[None]:
        """A block whose reads share one database session, where the store can share one
        (SqlCallStore.reading); a block that changes nothing otherwise."""
        reading = getattr(self.store, "reading", None)
        return reading() if reading is not None else contextlib.nullcontext()

    async def handset(self, attempt: CallAttempt) -> tuple[Handset | None, Decision | None]:
        handset = await self.store.handset(attempt.endpoint)
        return handset, check_handset(handset)

    async def check_pin(self, handset: Handset, pin: str, tries_left: int) -> PinCheck:
        """One PIN try on this handset. ``tries_left`` counts this one.

        The handset's lockout comes first: while it is locked, the PIN is not looked at, so a
        right and a wrong PIN get the same refusal, after the same reads and nothing else (no
        prisoner read, no secret, no hash). Wrong PINs count against the handset."""
        now = self.clock()
        state = await self.store.pin_lock_state(handset.cell)
        if state.locked(now):
            return PinCheck(None, self._locked(state))
        if not pin:  # silence is not a wrong PIN: it does not count towards the lockout
            if tries_left > 1:
                return PinCheck(None, None, retry=True)
            return PinCheck(None, Decision.refuse(Reason.NO_PIN, detail="no PIN keyed"))
        prisoners = await self.store.prisoners_in_cell(handset.cell)
        keys = as_keys(self._pin_secret())
        prisoner = match_pin(prisoners, pin, keys)
        if prisoner is None:
            locked = await self._wrong_pin(handset.cell, now, state)
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

    async def _wrong_pin(self, cell: str, now: datetime, state: LockState) -> LockState | None:
        """Count a wrong PIN against the handset; the new state if it locks the handset."""
        return await self.pin_guard.wrong_pin(cell, now, state)

    async def decide_number(
        self, prisoner: Prisoner, dialled: str
    ) -> tuple[Decision, CallPlan | None]:
        """The decision on the number, and for an allowed call its limit and price."""
        contacts = await self.store.contacts(prisoner.id)
        global_numbers = await self.store.global_numbers()
        in_progress = await self.store.has_active_call(prisoner.id)
        decision = decide_number(
            dialled,
            contacts=contacts,
            global_numbers=global_numbers,
            policy=self.policy,
            call_in_progress=in_progress,
        )
        if not decision.allowed or decision.number is None:
            return decision, None
        return await self._plan(prisoner, decision)

    async def _plan(
        self, prisoner: Prisoner, decision: Decision
    ) -> tuple[Decision, CallPlan | None]:
        b = self.billing
        assert decision.number is not None
        now = self.clock()
        local = now.astimezone(b.tz)
        day_start, _ = local_day_bounds(now, b.tz)
        ctx = await self.store.billing_context(
            prisoner.id, decision.number, day_start, local_week_start(now, b.tz)
        )
        # Privileged calls (legal advisers, the Samaritans) and numbers allowed for everyone
        # are free, and do not count against the family's daily and weekly allowance.
        free = decision.privileged or decision.reason in (
            Reason.GLOBAL_ALLOWED,
            Reason.EMERGENCY_ALLOWED,
        )
        dest = destination_class(decision.number, self.policy.region)
        rate = 0 if free else rate_for(ctx.tariffs, dest, local)
        windows = windows_for_wing(b.windows, b.wing_windows, ctx.wing)
        limit = call_limit(
            site_max_s=b.max_call_s,
            prisoner_max_s=ctx.prisoner_max_s,
            contact_max_s=ctx.contact_max_s,
            usage=ctx.usage,
            caps=Caps() if free else b.caps,
            window_left_s=seconds_left_in_window(windows, local),
            available_pence=ctx.available_pence,
            rate=rate,
            rounding=b.rounding,
            free=free,
        )
        if isinstance(limit, Decision):
            return Decision.refuse(limit.reason, decision.number, limit.detail), None
        return decision, CallPlan(limit, rate, dest, b.rounding, free)

    async def balance_enquiry(self, prisoner: Prisoner) -> tuple[Decision, BalanceFigures]:
        """The service code instead of a number (services/balance_enquiry.py): the figures to
        say, and the decision (outcome service) that ``finish`` stores. Nothing is reserved."""
        return await balance_enquiry(
            self.store, prisoner, policy=self.policy, billing=self.billing, now=self.clock()
        )

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
        """Store the decision (and open the call when allowed); return the final decision."""
        plan = plan if decision.allowed else None
        record = DecisionRecord(
            attempt, decision, handset, prisoner, self.clock(), decision_ms, plan
        )
        try:
            refused = await self.store.record(record)
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
            await self.store.record(record)
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
