"""Counting PIN tries against a handset's lockout: one implementation for every place a PIN is
keyed (the handset's FastAGI conversation, the prisoners' kiosk).

The rules are domain/pin_lockout.py's; this applies them to the store: a wrong PIN is written
against the handset of a cell, a lockout is stored with its alert and audit entry (the
store's ``lock_handset``), a right PIN ends the escalation and stores a PIN hashed with a
previous secret again with the current one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcontrol.domain.model import Prisoner
from callcontrol.domain.pin_lockout import DAY as PIN_DAY
from callcontrol.domain.pin_lockout import LockState, after_lockout, lockout_after_failure
from callcontrol.domain.pins import LockoutPolicy, PinKeys, hash_pin, needs_rehash

log = logging.getLogger("callcontrol.decision")


@dataclass(frozen=True)
class HandsetLockout:
    """A lockout that starts now: what the store writes, and staff see as an alert."""

    cell: str
    at: datetime
    state: LockState  # the handset's state from now on (its locked_until, its level)
    failures: int  # wrong PINs counted in the last day


class PinLockStore(Protocol):
    """The lockout records of the handsets (adapters/db/pin_store.py implements it)."""

    async def pin_lock_state(self, cell: str) -> LockState:
        """The handset's lockout state (a fresh LockState when it has none)."""
        ...

    async def record_pin_failure(self, cell: str, at: datetime) -> None:
        """A wrong PIN keyed on this cell's handset (on the handset: not on any prisoner)."""
        ...

    async def pin_failures_since(self, cell: str, since: datetime) -> Sequence[datetime]: ...

    async def lock_handset(self, lockout: HandsetLockout) -> None:
        """Store the handset's new state, the lockout (staff's alert) and its audit entry, in
        one transaction."""
        ...

    async def reset_pin_escalation(self, cell: str, at: datetime) -> None:
        """A successful call: the next lockout on this handset is a first one again."""
        ...

    async def rehash_pin(self, prisoner_id: int, old_hash: str, new_hash: str) -> bool:
        """Replace the prisoner's PIN hash, only if it is still ``old_hash`` (a PIN set by staff
        meanwhile wins); True when replaced."""
        ...


class PinGuard:
    """A cell handset's lockout, as every PIN try must count it."""

    def __init__(self, store: PinLockStore, policy: LockoutPolicy) -> None:
        self.store = store
        self.policy = policy

    async def state(self, cell: str) -> LockState:
        return await self.store.pin_lock_state(cell)

    async def wrong_pin(
        self, cell: str, now: datetime, state: LockState, where: str = "on the handset"
    ) -> LockState | None:
        """Count a wrong PIN against the cell's handset; the new state if it locks it.

        The day's earlier wrong PINs are read before this one is written: a read inside a
        transaction begun earlier (a SQLite snapshot) would not see it."""
        earlier = await self.store.pin_failures_since(cell, now - PIN_DAY)
        await self.store.record_pin_failure(cell, now)
        failures = [*earlier, now]
        until = lockout_after_failure(failures, now, self.policy, state)
        if until is None:
            return None
        locked = after_lockout(state, now, until)
        await self.store.lock_handset(HandsetLockout(cell, now, locked, len(failures)))
        log.warning(
            "handset %s locked until %s after %d wrong PINs in a day, the last %s (lockout %d "
            "since the last successful call)",
            cell,
            until.isoformat(timespec="seconds"),
            len(failures),
            where,
            locked.level,
        )
        return locked

    async def right_pin(
        self, prisoner: Prisoner, pin: str, keys: PinKeys, now: datetime, state: LockState
    ) -> None:
        """A right PIN, keyed while not locked, of a prisoner who may go on: the next lockout
        of the handset is a first one again; a PIN hashed with a previous secret is stored
        again with the current one."""
        if state.level:
            await self.store.reset_pin_escalation(prisoner.cell, now)
        if needs_rehash(keys, prisoner.pin_hash):
            new = hash_pin(keys.current, prisoner.prison_number, pin)
            if await self.store.rehash_pin(prisoner.id, prisoner.pin_hash, new):
                log.info(
                    "PIN of prisoner %s stored again with the current key", prisoner.prison_number
                )
