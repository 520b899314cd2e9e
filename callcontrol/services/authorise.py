"""Authorise a call from a cell handset: the use case, apart from any protocol.

The FastAGI adapter drives the conversation (prompts, digits) and calls these steps; the rules
themselves live in callcontrol.domain.rules. Every outcome is stored, allowed or refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcontrol.domain.model import (
    Contact,
    Decision,
    GlobalNumber,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.pins import LockoutPolicy, locked_until
from callcontrol.domain.rules import (
    SitePolicy,
    check_handset,
    check_prisoner,
    decide_number,
    match_pin,
)

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


class CallStore(Protocol):
    """The port to the records the decision needs (adapters/db/call_store.py implements it)."""

    async def handset(self, sip_username: str) -> Handset | None: ...

    async def prisoners_in_cell(self, cell: str) -> Sequence[Prisoner]: ...

    async def pin_failures_since(self, prisoner_id: int, since: datetime) -> Sequence[datetime]: ...

    async def record_pin_failure(
        self, cell: str, prisoner_ids: Sequence[int], at: datetime
    ) -> None: ...

    async def contacts(self, prisoner_id: int) -> Sequence[Contact]: ...

    async def global_numbers(self) -> Mapping[str, GlobalNumber]: ...

    async def has_active_call(self, prisoner_id: int) -> bool: ...

    async def record(self, record: DecisionRecord) -> bool:
        """Store the decision; for an allowed call also open the call. False when the call
        could not be opened because the prisoner already has one (the caller then refuses)."""
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
        pin_secret: Callable[[], bytes],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.policy = policy
        self.lockout = lockout
        self._pin_secret = pin_secret
        self.clock = clock

    async def handset(self, attempt: CallAttempt) -> tuple[Handset | None, Decision | None]:
        handset = await self.store.handset(attempt.endpoint)
        return handset, check_handset(handset)

    async def check_pin(self, handset: Handset, pin: str, tries_left: int) -> PinCheck:
        """One PIN try on this handset. ``tries_left`` counts this one."""
        now = self.clock()
        prisoners = await self.store.prisoners_in_cell(handset.cell)
        prisoner = match_pin(prisoners, pin, self._pin_secret()) if pin else None
        if prisoner is None:
            if pin:  # silence is not a wrong PIN: it does not count towards the lockout
                await self.store.record_pin_failure(handset.cell, [p.id for p in prisoners], now)
            if tries_left > 1:
                return PinCheck(None, None, retry=True)
            reason = Reason.WRONG_PIN if pin else Reason.NO_PIN
            return PinCheck(None, Decision.refuse(reason, detail="no matching PIN"))
        since = now - self.lockout.window - self.lockout.lockout
        failures = await self.store.pin_failures_since(prisoner.id, since)
        refusal = check_prisoner(prisoner, locked_until(failures, now, self.lockout), now)
        if refusal is not None:
            return PinCheck(None, refusal)
        return PinCheck(prisoner, None)

    async def decide_number(self, prisoner: Prisoner, dialled: str) -> Decision:
        contacts = await self.store.contacts(prisoner.id)
        global_numbers = await self.store.global_numbers()
        in_progress = await self.store.has_active_call(prisoner.id)
        return decide_number(
            dialled,
            contacts=contacts,
            global_numbers=global_numbers,
            policy=self.policy,
            call_in_progress=in_progress,
        )

    async def finish(
        self,
        attempt: CallAttempt,
        decision: Decision,
        *,
        handset: Handset | None,
        prisoner: Prisoner | None,
        decision_ms: float | None = None,
    ) -> Decision:
        """Store the decision (and open the call when allowed); return the final decision."""
        record = DecisionRecord(attempt, decision, handset, prisoner, self.clock(), decision_ms)
        if not await self.store.record(record):
            decision = Decision.refuse(
                Reason.CALL_IN_PROGRESS,
                number=decision.number,
                detail="another call of this prisoner is active",
            )
            record = DecisionRecord(attempt, decision, handset, prisoner, record.at, decision_ms)
            await self.store.record(record)
        self._log(record)
        return decision

    async def call_ended(self, uniqueid: str, cause: str) -> None:
        if await self.store.end_call(uniqueid, cause, self.clock()):
            log.info("call on channel %s ended (%s)", uniqueid, cause or "no cause")

    async def reconcile(self, live_uniqueids: set[str]) -> int:
        """End every open call whose channel Asterisk no longer has. Returns how many."""
        ended = 0
        for uniqueid in await self.store.open_calls():
            if uniqueid not in live_uniqueids:
                await self.store.end_call(uniqueid, "gone while the daemon was away", self.clock())
                ended += 1
        if ended:
            log.warning("reconciled %d call(s) that ended while the daemon was not watching", ended)
        return ended

    @staticmethod
    def _log(record: DecisionRecord) -> None:
        d = record.decision
        a = record.attempt
        who = record.prisoner.prison_number if record.prisoner else "-"
        level = logging.INFO
        if d.outcome is Outcome.REFUSE and d.reason is Reason.INTERNAL_ERROR:
            level = logging.ERROR
        log.log(
            level,
            "%s call from handset %s prisoner %s to %r (%s): %s%s",
            d.outcome.value.upper(),
            a.endpoint,
            who,
            a.dialled,
            d.number or "-",
            d.reason.value,
            f" ({d.detail})" if d.detail else "",
        )
