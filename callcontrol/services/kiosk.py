"""The prisoners' kiosk: sign in with prison number and PIN, read one's own account, calls and
contacts, ask for a contact, change one's PIN. Apart from any web page.

Signing in is the handset's PIN check at another place (docs/kiosk.md):

* **Keyed on the cell.** A PIN typed for a prison number counts against the handset of that
  prisoner's cell, through the same PinGuard as the handset (services/pin_guard.py): the same
  rules, the same lockout, alert and audit entry, the same ``cell unlock``. Guessing a
  cellmate's PIN at the kiosk spends the one budget the handset has (8 wrong PINs a day by
  default), so it is never faster than at the handset; every lockout ends by itself or by
  staff's unlock, never for ever; and the state is the database's, so it survives restarts.
* **No oracle.** An unknown prison number, a wrong PIN, a suspended prisoner and a locked
  account all get None, after the same reads and exactly one PIN hash computed (for an
  account that cannot sign in, against a hash nothing matches). While the cell is locked the
  PIN is compared with nothing that matters, as on the handset.

After sign-in every call takes the KioskUser of the session, never a prison number from the
page, and re-reads the prisoner: suspended, moved out of every cell or with a new PIN, the
session is over (``current`` gives None).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from callcontrol.domain.kiosk import NO_CELL, NewPinProblem, new_pin_problem, typed_prison_number
from callcontrol.domain.model import Prisoner
from callcontrol.domain.pins import (
    HASH_PREFIX,
    LockoutPolicy,
    PinKeys,
    as_keys,
    key_id,
    pin_matches,
)
from callcontrol.domain.rules import matching_prisoners
from callcontrol.services.call_history import HistoryFilter, HistoryReader, HistoryRow
from callcontrol.services.errors import ServiceError, SharedPin
from callcontrol.services.kiosk_ports import (
    Accounts,
    CallItem,
    Contacts,
    KioskRefused,
    KioskStore,
    OwnPin,
    StatementItem,
)
from callcontrol.services.pin_guard import PinGuard, PinLockStore
from callcontrol.services.views import ContactView, Money, StatementLine

log = logging.getLogger("callcontrol.kiosk")

MAX_PIN_TYPED = 16  # longer input is cut before hashing: the work per try stays the same
CALLS_SHOWN = 50
CONTACT_KINDS = ("social", "legal")
VIA = "kiosk"  # how the operator's services name the kiosk in the audit log and histories


@dataclass(frozen=True)
class KioskUser:
    """Who a kiosk session belongs to, fixed at sign-in."""

    prison_number: str
    name: str
    pin_hash: str  # the PIN the session was opened with: a new PIN ends the session


class PinChange(enum.Enum):
    CHANGED = "changed"  # stored: the session ends, sign in with the new PIN
    WRONG_OLD = "wrong_old"  # counted against the lockout; the session ends
    LOCKED = "locked"  # the cell's handset is locked: nothing compared, nothing changed
    REFUSED = "refused"  # the new PIN breaks a rule (``problem`` says which)
    ENDED = "ended"  # the session was no longer valid


@dataclass(frozen=True)
class PinChangeResult:
    outcome: PinChange
    problem: NewPinProblem | None = None


def _unmatchable(keys: PinKeys) -> str:
    """A stored-hash lookalike, under the current key, that no PIN matches: checking a PIN
    against it costs what checking a real one does."""
    return f"{HASH_PREFIX}{key_id(keys.current)}${'0' * 64}"


class KioskService:
    def __init__(
        self,
        store: KioskStore,
        pins: PinLockStore,
        *,
        accounts: Accounts,
        contacts: Contacts,
        prisoners: OwnPin,
        history: HistoryReader,
        lockout: LockoutPolicy,
        pin_secret: Callable[[], bytes | PinKeys],
        clock: Callable[[], datetime],
        pin_digits: int = 4,
    ) -> None:
        self.store = store
        self.accounts, self.contacts, self.prisoners = accounts, contacts, prisoners
        self.history = history
        self.guard = PinGuard(pins, lockout)
        # One PIN check at a time: each try sees every earlier one's count, so tries sent at
        # once cannot all slip in before the lockout (a try takes a few milliseconds).
        self._one_at_a_time = asyncio.Lock()
        self._pin_secret = pin_secret
        self.clock = clock
        self.pin_digits = pin_digits

    # --- signing in ----------------------------------------------------------------------------

    async def sign_in(self, typed_number: str, typed_pin: str) -> KioskUser | None:
        """The prisoner, when this is their prison number and PIN, they are not suspended and
        their cell's handset is not locked; otherwise None, whichever of these failed."""
        async with self._one_at_a_time:
            return await self._sign_in(typed_number, typed_pin)

    async def _sign_in(self, typed_number: str, typed_pin: str) -> KioskUser | None:
        now = self.clock()
        number = typed_prison_number(typed_number)
        pin = typed_pin.strip()[:MAX_PIN_TYPED]
        prisoner = await self.store.account(number)
        if prisoner is not None and not prisoner.cell:
            prisoner = None  # no cell, no handset to count tries against: as good as unknown
        cell = prisoner.cell if prisoner is not None and prisoner.cell else NO_CELL
        state = await self.guard.state(cell)
        keys = as_keys(self._pin_secret())
        locked = state.locked(now)
        usable = prisoner is not None and not locked
        stored = prisoner.pin_hash if prisoner is not None and usable else _unmatchable(keys)
        right = pin_matches(keys, number or "-", pin, stored)  # one hash, whatever the case
        if locked:
            return None  # as on the handset: nothing counted, nothing told
        if not right or prisoner is None:
            if pin:  # an empty PIN is no guess (the handset's silence)
                await self.guard.wrong_pin(cell, now, state, where=f"at the kiosk for {number}")
            return None
        if not prisoner.active:
            return None
        await self.guard.right_pin(prisoner, pin, keys, now, state)
        fresh = await self.store.account(prisoner.prison_number)  # the hash, if stored again
        log.info("kiosk: prisoner %s signed in", prisoner.prison_number)
        return KioskUser(prisoner.prison_number, prisoner.name, (fresh or prisoner).pin_hash)

    async def current(self, user: KioskUser) -> Prisoner | None:
        """The session's prisoner as the store has them now; None when the session must end
        (suspended, no longer in a cell, a new PIN, gone)."""
        prisoner = await self.store.account(user.prison_number)
        if (
            prisoner is None
            or not prisoner.active
            or not prisoner.cell
            or prisoner.pin_hash != user.pin_hash
        ):
            return None
        return prisoner

    # --- reading one's own records -------------------------------------------------------------

    async def _prisoner(self, user: KioskUser) -> Prisoner:
        prisoner = await self.current(user)
        if prisoner is None:
            raise SessionEnded
        return prisoner

    async def money(self, user: KioskUser) -> Money:
        return await self.accounts.balance((await self._prisoner(user)).prison_number)

    async def statement(self, user: KioskUser) -> Sequence[StatementItem]:
        """The account, newest first."""
        lines = await self.accounts.statement((await self._prisoner(user)).prison_number)
        return [_statement_item(line) for line in reversed(lines)]

    async def calls(self, user: KioskUser) -> Sequence[CallItem]:
        """The prisoner's own latest calls, newest first (never a recording)."""
        prisoner = await self._prisoner(user)
        query = HistoryFilter(prisoner=prisoner.prison_number, limit=CALLS_SHOWN)
        return [_call_item(row) for row in await self.history.history(query)]

    async def contacts_of(self, user: KioskUser) -> Sequence[ContactView]:
        return await self.contacts.of((await self._prisoner(user)).prison_number)

    async def request_contact(
        self, user: KioskUser, number: str, kind: str, label: str
    ) -> ContactView:
        """Ask for a number to be approved: pending in staff's queue, under the limits
        (ContactService.request: the same checks as staff's additions)."""
        prisoner = await self._prisoner(user)
        if kind not in CONTACT_KINDS:
            raise KioskRefused("Choose family and friends, or legal.")
        if not number.strip():
            raise KioskRefused("Type the telephone number.")
        try:
            view = await self.contacts.request(
                prisoner.prison_number, number.strip(), kind, label.strip(), VIA
            )
        except ServiceError as e:
            raise KioskRefused(str(e)) from None
        log.info(
            "kiosk: prisoner %s asked for %s contact %s", prisoner.prison_number, kind, view.number
        )
        return view

    # --- changing one's PIN ----------------------------------------------------------------------

    async def change_pin(self, user: KioskUser, old: str, new: str, again: str) -> PinChangeResult:
        """Change the session's prisoner's PIN. The old PIN is a PIN try like any other (a
        wrong one counts against the lockout and ends the session: an unattended session
        gives a guesser one try); a new PIN that is a cellmate's is refused and counted as a
        wrong PIN too, since the refusal tells that a cellmate has it."""
        async with self._one_at_a_time:
            return await self._change_pin(user, old, new, again)

    async def _change_pin(self, user: KioskUser, old: str, new: str, again: str) -> PinChangeResult:
        prisoner = await self.current(user)
        if prisoner is None or prisoner.cell is None:
            return PinChangeResult(PinChange.ENDED)
        now = self.clock()
        state = await self.guard.state(prisoner.cell)
        if state.locked(now):
            return PinChangeResult(PinChange.LOCKED)
        keys = as_keys(self._pin_secret())
        old = old.strip()[:MAX_PIN_TYPED]
        if not pin_matches(keys, prisoner.prison_number, old, prisoner.pin_hash):
            where = f"at the kiosk for {prisoner.prison_number} (the old PIN, to change it)"
            await self.guard.wrong_pin(prisoner.cell, now, state, where=where)
            return PinChangeResult(PinChange.WRONG_OLD)
        problem = new_pin_problem(old, new, again, self.pin_digits)
        if problem is not None:
            return PinChangeResult(PinChange.REFUSED, problem)
        if matching_prisoners(await self.store.cellmates(prisoner), new, keys):
            where = f"at the kiosk for {prisoner.prison_number} (a cellmate's PIN as the new one)"
            await self.guard.wrong_pin(prisoner.cell, now, state, where=where)
            return PinChangeResult(PinChange.REFUSED, NewPinProblem.TAKEN)
        try:
            await self.prisoners.set_own_pin(prisoner.prison_number, new, VIA)
        except SharedPin:  # a cellmate took it meanwhile: checked again in its transaction
            return PinChangeResult(PinChange.REFUSED, NewPinProblem.TAKEN)
        except ServiceError:
            return PinChangeResult(PinChange.ENDED)
        log.info("kiosk: prisoner %s changed their PIN", prisoner.prison_number)
        return PinChangeResult(PinChange.CHANGED)


def _statement_item(line: StatementLine) -> StatementItem:
    entry = line.entry
    if entry is None:  # a connected call that cost nothing
        return StatementItem(line.at, "call", line.number, 0, line.balance_after, line.talk_seconds)
    kind = "call" if entry.kind == "charge" else entry.kind
    return StatementItem(
        line.at, kind, line.number, entry.amount_pence, line.balance_after, line.talk_seconds
    )


def _call_item(row: HistoryRow) -> CallItem:
    if row.decision != "allow":
        outcome, reason = "refused", row.reason
    elif row.answered_at is not None:
        outcome, reason = "connected", ""
    else:
        outcome, reason = "not_connected", ""
    number = row.number or row.dialled
    return CallItem(row.decided_at, number, outcome, reason, row.talk_seconds, row.charge_pence)


class SessionEnded(Exception):
    """The session's prisoner may no longer use it: the page signs them out."""
