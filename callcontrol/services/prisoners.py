"""Prisoners: list and read them (cell, whether they may call, limits, balance), add one, move
them to another cell, suspend and reinstate them, give them a new PIN (the PIN rules, and
never a cellmate's PIN: the handset could not tell who is calling), set their longest call.
Every change is audited under the actor's name, in the same transaction as the change.
(Supervisor.suspend_prisoner calls ``suspend`` and then cuts their live calls.)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from callcontrol.domain import model
from callcontrol.domain.pins import Keys, as_keys, hash_pin
from callcontrol.domain.roles import Right
from callcontrol.domain.rules import matching_prisoners
from callcontrol.services import checks
from callcontrol.services.actors import Actor, AuditNote, note, require
from callcontrol.services.errors import Conflict, Invalid, NotFound, SharedPin
from callcontrol.services.views import CellView, Limits, Money, PrisonerDetail, PrisonerView

ADD, MOVE, SUSPEND, RESUME, SET_PIN, LIMIT = (
    "prisoner_add", "move", "suspend", "resume", "set_pin", "limit"
)  # fmt: skip
PRISONER_ROLE = "prisoner"  # a prisoner acting for themself (the kiosk)
MAX_LIMIT_S = 24 * 3600


class PrisonerTx(Protocol):
    async def prisoners(self) -> list[PrisonerView]: ...

    async def prisoner(self, prison_number: str) -> PrisonerView | None: ...

    async def cell(self, name: str) -> CellView | None: ...

    async def cellmates(self, cell: str) -> list[model.Prisoner]:
        """The prisoners in ``cell`` with their PIN hashes (to refuse a shared PIN)."""
        ...

    async def add_prisoner(
        self, prison_number: str, name: str, pin_hash: str, cell: str
    ) -> PrisonerView: ...

    async def update_prisoner(self, prison_number: str, **changes: Any) -> None:
        """Change some of: cell (a name), active, suspended_reason, pin_hash, max_call_s."""
        ...

    async def money(self, prison_number: str) -> Money: ...

    async def audit(self, note: AuditNote) -> None: ...


class PrisonerStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A PrisonerTx."""
        ...


async def _prisoner(tx: PrisonerTx, prison_number: str) -> PrisonerView:
    prisoner = await tx.prisoner(prison_number)
    if prisoner is None:
        raise NotFound(f"no prisoner with prison number {prison_number!r}")
    return prisoner


async def _cell(tx: PrisonerTx, name: str) -> CellView:
    cell = await tx.cell(name)
    if cell is None:
        raise NotFound(f"no cell named {name!r}")
    return cell


def limit_seconds(minutes: int | None) -> int | None:
    """A call limit in minutes as seconds; None or 0: no limit of its own."""
    if minutes is None or minutes == 0:
        return None
    checks.whole(minutes, "a call limit")
    if not 1 <= minutes <= MAX_LIMIT_S // 60:
        raise Invalid(f"a call limit is 1 to {MAX_LIMIT_S // 60} minutes, or 0 for none")
    return minutes * 60


class PrisonerService:
    def __init__(
        self,
        store: PrisonerStore,
        *,
        pin_keys: Callable[[], Keys],
        pin_digits: int = 4,
        site_max_call_s: int | None = None,
        max_social_contacts: int = 20,
        max_legal_contacts: int = 10,
    ) -> None:
        """``pin_keys`` is called when a PIN is hashed or compared (it may read a file)."""
        self.store, self.pin_keys, self.pin_digits = store, pin_keys, pin_digits
        self.site_max_call_s = site_max_call_s
        self.max_social, self.max_legal = max_social_contacts, max_legal_contacts

    # --- reading ---

    async def list(self) -> list[PrisonerView]:
        async with self.store.transaction() as tx:
            return await tx.prisoners()

    async def view(self, prison_number: str) -> PrisonerView:
        async with self.store.transaction() as tx:
            return await _prisoner(tx, prison_number)

    async def get(self, prison_number: str) -> PrisonerDetail:
        """The prisoner, their money and their limits."""
        async with self.store.transaction() as tx:
            prisoner = await _prisoner(tx, prison_number)
            money = await tx.money(prison_number)
        limits = Limits(prisoner.max_call_s, self.site_max_call_s, self.max_social, self.max_legal)
        return PrisonerDetail(prisoner, money, limits)

    # --- changing ---

    async def _refuse_shared_pin(
        self, tx: PrisonerTx, cell: str, prison_number: str, pin: str
    ) -> None:
        cellmates = [p for p in await tx.cellmates(cell) if p.prison_number != prison_number]
        if matching_prisoners(cellmates, pin, self.pin_keys()):
            raise SharedPin(f"a prisoner in cell {cell} already has this PIN: choose another")

    def _hash(self, prison_number: str, pin: str) -> str:
        return hash_pin(as_keys(self.pin_keys()).current, prison_number, pin)

    async def add(
        self, actor: Actor, prison_number: str, name: str, pin: str, cell: str
    ) -> PrisonerView:
        """Add a prisoner in ``cell`` with ``pin`` (only its keyed hash is stored)."""
        require(actor, Right.ADMINISTER, f"add prisoner {prison_number}")
        checks.prison_number(prison_number)
        name = checks.text(name, "name", checks.MAX_NAME, required=True)
        checks.pin(pin, self.pin_digits)
        async with self.store.transaction() as tx:
            await _cell(tx, cell)
            if await tx.prisoner(prison_number) is not None:
                raise Conflict(f"prisoner {prison_number} already exists")
            await self._refuse_shared_pin(tx, cell, prison_number, pin)
            added = await tx.add_prisoner(prison_number, name, self._hash(prison_number, pin), cell)
            await tx.audit(note(actor, ADD, f"prisoner:{prison_number}", detail=f"cell {cell}"))
            return added

    async def move(self, actor: Actor, prison_number: str, cell: str) -> PrisonerView:
        require(actor, Right.ADMINISTER, f"move prisoner {prison_number}")
        async with self.store.transaction() as tx:
            prisoner = await _prisoner(tx, prison_number)
            await _cell(tx, cell)
            if prisoner.cell == cell:
                raise Conflict(f"prisoner {prison_number} is already in cell {cell}")
            # Their PIN cannot be compared with the new cellmates' (only salted hashes are
            # kept): should two now share one, the handset refuses it as ambiguous
            # (rules.match_pin) until one of them changes it.
            await tx.update_prisoner(prison_number, cell=cell)
            detail = f"from cell {prisoner.cell or '-'} to {cell}"
            await tx.audit(note(actor, MOVE, f"prisoner:{prison_number}", detail=detail))
            return await _prisoner(tx, prison_number)

    async def suspend(self, actor: Actor, prison_number: str, reason: Any = "") -> PrisonerView:
        """Every call of the prisoner refused until reinstated."""
        require(actor, Right.SUPERVISE, f"suspend prisoner {prison_number}")
        why = checks.reason(reason)
        return await self._set_active(actor, prison_number, False, why, SUSPEND)

    async def reinstate(self, actor: Actor, prison_number: str, reason: Any = "") -> PrisonerView:
        """Let the prisoner call again: an admin's act."""
        require(actor, Right.ADMINISTER, f"reinstate prisoner {prison_number}")
        why = checks.reason(reason)
        return await self._set_active(actor, prison_number, True, why, RESUME)

    async def _set_active(
        self, actor: Actor, prison_number: str, active: bool, why: str, action: str
    ) -> PrisonerView:
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            reason = "" if active else why
            await tx.update_prisoner(prison_number, active=active, suspended_reason=reason)
            await tx.audit(note(actor, action, f"prisoner:{prison_number}", why))
            return await _prisoner(tx, prison_number)

    async def set_pin(self, actor: Actor, prison_number: str, pin: str) -> PrisonerView:
        """Give a prisoner a new PIN (SharedPin when a cellmate has it). Never logged."""
        require(actor, Right.ADMINISTER, f"set the PIN of prisoner {prison_number}")
        return await self._set_pin(actor, prison_number, pin, "")

    async def set_own_pin(self, prison_number: str, pin: str, via: str) -> PrisonerView:
        """A prisoner changes their own PIN (the kiosk, once it has checked the old one)."""
        actor = Actor(prison_number, PRISONER_ROLE)
        return await self._set_pin(actor, prison_number, pin, f"by the prisoner via {via}")

    async def _set_pin(
        self, actor: Actor, prison_number: str, pin: str, detail: str
    ) -> PrisonerView:
        checks.pin(pin, self.pin_digits)
        async with self.store.transaction() as tx:
            prisoner = await _prisoner(tx, prison_number)
            if prisoner.cell is not None:
                await self._refuse_shared_pin(tx, prisoner.cell, prison_number, pin)
            await tx.update_prisoner(prison_number, pin_hash=self._hash(prison_number, pin))
            await tx.audit(note(actor, SET_PIN, f"prisoner:{prison_number}", detail=detail))
            return await _prisoner(tx, prison_number)

    async def set_limit(
        self, actor: Actor, prison_number: str, minutes: int | None
    ) -> PrisonerView:
        """The longest call this prisoner may make; None or 0 removes their own limit."""
        require(actor, Right.ADMINISTER, f"set the call limit of prisoner {prison_number}")
        seconds = limit_seconds(minutes)
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            await tx.update_prisoner(prison_number, max_call_s=seconds)
            detail = f"longest call {minutes} min" if seconds else "no call limit of their own"
            await tx.audit(note(actor, LIMIT, f"prisoner:{prison_number}", detail=detail))
            return await _prisoner(tx, prison_number)
