"""Settle calls: rate what was talked, charge it once, release the rest of the reservation.

The end of a call reaches us from the caller's hangup handler over FastAGI, or, when the daemon
was not there to hear it, from the journal Asterisk writes. Whichever comes first settles the
call; the store makes sure nothing is settled twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcontrol.domain.call_end import CallEnd, JournalEntry, ended_by
from callcontrol.domain.tariffs import Rounding, charge_pence
from callcontrol.logging_setup import about_call

log = logging.getLogger("callcontrol.settlement")


@dataclass(frozen=True)
class OpenCall:
    """An allowed call not yet settled, with what its reservation fixed at the decision."""

    call_id: int
    uniqueid: str
    channel: str
    prisoner_id: int
    number: str
    started_at: datetime
    rate: int  # hundredths of a penny a minute
    rounding: Rounding
    free: bool
    max_seconds: int  # the time limit given to Dial
    reserved_pence: int


@dataclass(frozen=True)
class Settlement:
    call_id: int
    talk_seconds: int
    charge_pence: int
    ended_by: str  # caller | called | limit | system
    accepted: bool
    ended_at: datetime | None = None  # when the call ended (the settlement lag is from here)


class SettlementStore(Protocol):
    async def open_call(self, uniqueid: str) -> OpenCall | None:
        """The unsettled call on that channel, if any."""
        ...

    async def unsettled_calls(self) -> Sequence[OpenCall]: ...

    async def settle(self, call: OpenCall, end: CallEnd, settlement: Settlement) -> bool:
        """Record the end, charge and release, in one transaction. False if it was settled
        already (nothing changed)."""
        ...

    async def settle_end(
        self, end: CallEnd, price: Callable[[OpenCall], Settlement]
    ) -> tuple[OpenCall, Settlement] | None:
        """The call path's settlement in one go: read the unsettled call on ``end``'s channel,
        price it with ``price`` (pure), and settle it as ``settle`` does, on one connection.
        The call and its settlement as written; None when there is no unsettled call on that
        channel or another report settled it first (nothing changed)."""
        ...


def settle_charge(call: OpenCall, end: CallEnd, free_drop_s: int) -> Settlement:
    """What a call costs, from the facts of its end. Pure."""
    accepted = end.accepted_at is not None
    talk = min(end.talk_seconds(), call.max_seconds) if accepted else 0
    who = ended_by(end, call.channel, call.max_seconds) if accepted else "nobody"
    if not accepted or call.free or (who == "system" and talk < free_drop_s):
        charge = 0
    else:
        charge = min(charge_pence(call.rate, talk, call.rounding), call.reserved_pence)
    return Settlement(call.call_id, talk, charge, who, accepted, end.ended_at)


class Settler:
    def __init__(
        self, store: SettlementStore, *, free_drop_s: int, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.free_drop_s = free_drop_s
        self.clock = clock
        # Called with (call, settlement) once a call is settled (recordings are ingested then).
        self.on_settled: list[Callable[[OpenCall, Settlement], None]] = []

    async def settle(self, end: CallEnd, source: str) -> Settlement | None:
        """Settle the call ``end`` reports (read, priced and written on one connection)."""
        with about_call(end.uniqueid):  # its lines, and the recording's ingest, name the call
            done = await self.store.settle_end(
                end, lambda call: settle_charge(call, end, self.free_drop_s)
            )
            if done is None:
                log.debug(
                    "end of %s from %s: no unsettled call (settled already?)", end.uniqueid, source
                )
                return None
            call, settlement = done
            self._settled(call, end, settlement, source)
            return settlement

    async def _settle(self, call: OpenCall, end: CallEnd, source: str) -> Settlement | None:
        with about_call(call.uniqueid):  # its lines, and the recording's ingest, name the call
            return await self._settle_call(call, end, source)

    async def _settle_call(self, call: OpenCall, end: CallEnd, source: str) -> Settlement | None:
        settlement = settle_charge(call, end, self.free_drop_s)
        if not await self.store.settle(call, end, settlement):
            return None
        self._settled(call, end, settlement, source)
        return settlement

    def _settled(self, call: OpenCall, end: CallEnd, settlement: Settlement, source: str) -> None:
        """Tell whoever waits for settlements, and the operator's log."""
        for callback in self.on_settled:
            callback(call, settlement)
        log.info(
            "SETTLED call %s to %s: %s, talked %d s, charged %dp (reserved %dp), ended by %s, "
            "cause %s, from the %s",
            call.call_id,
            call.number,
            "accepted" if settlement.accepted else "not accepted",
            settlement.talk_seconds,
            settlement.charge_pence,
            call.reserved_pence,
            settlement.ended_by,
            end.hangup_cause or "-",
            source,
        )

    async def settle_after_hangup(
        self, uniqueid: str, entry: JournalEntry | None, hung_up_at: datetime
    ) -> Settlement | None:
        """A call whose caller hung up but whose end nobody reported (its hangup handler never
        ran: the caller hung up between the decision and the Dial). From the journal's end if it
        has one; otherwise the call ended at the hangup, accepted or not as the journal says.
        None when the call is settled already or not ours."""
        call = await self.store.open_call(uniqueid)
        if call is None:
            return None
        entry = entry or JournalEntry()
        if entry.end is not None:
            return await self._settle(call, entry.end, "journal")
        end = CallEnd(
            uniqueid,
            entry.accepted_at,
            max(hung_up_at, entry.accepted_at) if entry.accepted_at else hung_up_at,
            "ANSWER" if entry.accepted_at else "",
            "",
            "hangup seen on AMI",
        )
        log.warning(
            "call %s: its channel hung up and no end was reported; settling to the hangup",
            call.call_id,
        )
        return await self._settle(call, end, "AMI hangup (no end reported)")

    async def reconcile(
        self,
        live: set[str],
        journal: Mapping[str, JournalEntry],
        asterisk_lost_at: datetime | None = None,
    ) -> int:
        """Settle every unsettled call whose channel Asterisk no longer has. Returns how many.

        From the journal when it has the end; when it has only the acceptance (Asterisk went
        away mid-call), the call ended when Asterisk was lost, or, if nobody saw that, at its
        acceptance: a call nobody saw end is never charged for time nobody saw.
        """
        settled = 0
        for call in await self.store.unsettled_calls():
            if call.uniqueid in live:
                continue
            entry = journal.get(call.uniqueid, JournalEntry())
            if entry.end is not None:
                end, source = entry.end, "journal"
            elif entry.accepted_at is not None:
                ended = (
                    asterisk_lost_at
                    if asterisk_lost_at and asterisk_lost_at > entry.accepted_at
                    else entry.accepted_at
                )
                end = CallEnd(
                    call.uniqueid, entry.accepted_at, ended, "ANSWER", "", "asterisk went away"
                )
                source = "journal (acceptance only: Asterisk lost the call)"
                log.warning(
                    "call %s: Asterisk lost it mid-call; settling to %s",
                    call.call_id,
                    ended.isoformat(),
                )
            else:
                end = CallEnd(call.uniqueid, None, self.clock(), "", "", "")
                source = "reconciliation (never accepted)"
            if await self._settle(call, end, source) is not None:
                settled += 1
        return settled
