"""Each prisoner's contact list and the staff's queue of pending contacts.

A number enters a list as pending (added by staff, or requested by the prisoner at the
kiosk: the same queue, under the same limits), and is approved or blocked by staff with a
reason, kept in the contact's history and in the audit log under the actor's name. The
history is append-only: who, when, the status before and after, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from callcontrol.domain import model
from callcontrol.domain.model import ContactKind, ContactStatus
from callcontrol.domain.numbers import is_short_code
from callcontrol.domain.roles import Right
from callcontrol.domain.rules import contact_limit_reached
from callcontrol.services import checks
from callcontrol.services.actors import Actor, AuditNote, note, require
from callcontrol.services.errors import Conflict, NotFound
from callcontrol.services.prisoners import PRISONER_ROLE, limit_seconds
from callcontrol.services.views import (
    ContactChangeView,
    ContactView,
    PendingContact,
    PrisonerView,
)

# History actions, and the audit actions of staff's acts on contacts.
ADDED, REQUESTED, APPROVED, BLOCKED, LIMIT = "added", "requested", "approved", "blocked", "limit"
AUDIT_ACTIONS = {
    ADDED: "contact_add",
    REQUESTED: "contact_request",
    APPROVED: "contact_approve",
    BLOCKED: "contact_block",
    LIMIT: "contact_limit",
}
MAX_VIA = 40


class ContactTx(Protocol):
    async def prisoner(self, prison_number: str) -> PrisonerView | None: ...

    async def lock_list(self, prison_number: str) -> None:
        """Hold the prisoner's contact list until the end of the transaction: two changes at
        once (two kiosk requests) are made one after the other, each seeing the other's."""
        ...

    async def contacts(self, prison_number: str) -> list[ContactView]:
        """The prisoner's contacts by kind, then number."""
        ...

    async def pending(self) -> list[PendingContact]:
        """Every pending contact of every prisoner, oldest request first."""
        ...

    async def history(self, prison_number: str) -> list[ContactChangeView]:
        """Every change to the prisoner's contacts, oldest first."""
        ...

    async def save_contact(self, contact: ContactView, change: ContactChangeView) -> ContactView:
        """Insert the contact (new number for the prisoner) or update it (status, label,
        max_call_s), and append ``change`` to the history; Conflict if a concurrent writer
        listed the number first."""
        ...

    async def audit(self, note: AuditNote) -> None: ...


class ContactStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A ContactTx."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _prisoner(tx: ContactTx, prison_number: str) -> PrisonerView:
    prisoner = await tx.prisoner(prison_number)
    if prisoner is None:
        raise NotFound(f"no prisoner with prison number {prison_number!r}")
    return prisoner


async def _listed(
    tx: ContactTx, prison_number: str, number: str
) -> tuple[list[ContactView], ContactView | None]:
    """The prisoner's contacts, and the one with ``number`` if listed."""
    await _prisoner(tx, prison_number)
    await tx.lock_list(prison_number)
    contacts = await tx.contacts(prison_number)
    return contacts, next((c for c in contacts if c.number == number), None)


def _as_domain(c: ContactView) -> model.Contact:
    return model.Contact(c.number, ContactKind(c.kind), ContactStatus(c.status), c.label)


class ContactService:
    def __init__(
        self,
        store: ContactStore,
        *,
        region: str = "GB",
        max_social: int = 20,
        max_legal: int = 15,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store, self.region, self.clock = store, region, clock
        self.max_social, self.max_legal = max_social, max_legal

    # --- reading ---

    async def pending(self) -> list[PendingContact]:
        """The staff's queue: every pending contact across prisoners, oldest first."""
        async with self.store.transaction() as tx:
            return await tx.pending()

    async def of(self, prison_number: str) -> list[ContactView]:
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            return await tx.contacts(prison_number)

    async def history(self, prison_number: str) -> list[ContactChangeView]:
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            return await tx.history(prison_number)

    # --- the rules ---

    def _check_limit(
        self, prison_number: str, others: list[ContactView], kind: ContactKind
    ) -> None:
        domain = [_as_domain(c) for c in others]
        if contact_limit_reached(domain, kind, self.max_social, self.max_legal):
            limit = self.max_legal if kind is ContactKind.LEGAL else self.max_social
            raise Conflict(f"{prison_number} has reached the limit of {limit} {kind} contacts")

    async def _save(
        self,
        tx: ContactTx,
        actor: Actor,
        contact: ContactView,
        old: str,
        action: str,
        note_text: str,
        reason: str = "",
    ) -> ContactView:
        change = ContactChangeView(
            contact.prison_number, contact.number, action, old, contact.status,
            actor.name, self.clock(), note_text,
        )  # fmt: skip
        saved = await tx.save_contact(contact, change)
        target = f"contact:{contact.prison_number}:{contact.number}"
        detail = f"{old or 'new'} -> {contact.status}" + (f"; {note_text}" if note_text else "")
        await tx.audit(note(actor, AUDIT_ACTIONS[action], target, reason, detail))
        return saved

    async def _new(
        self, actor: Actor, prison_number: str, number: str, kind: str, label: str, action: str
    ) -> ContactView:
        the_kind = checks.kind(kind)
        label = checks.text(label, "label", checks.MAX_LABEL)
        checks.by(actor.name)
        normalised = checks.list_number(number, self.region)
        if is_short_code(normalised):
            raise Conflict(f"{normalised} is a short code: list it for everyone (number allow)")
        async with self.store.transaction() as tx:
            existing, _ = await _listed(tx, prison_number, normalised)
            for c in existing:
                if c.number == normalised:
                    listed = f"{normalised} is already listed for {prison_number}"
                    raise Conflict(f"{listed} ({c.status})")
            self._check_limit(prison_number, existing, the_kind)
            contact = ContactView(
                prison_number, normalised, the_kind.value, ContactStatus.PENDING.value, label
            )
            return await self._save(tx, actor, contact, "", action, f"{the_kind} contact")

    # --- changing ---

    async def add(
        self, actor: Actor, prison_number: str, number: str, kind: str, label: str = ""
    ) -> ContactView:
        """Staff put a number on a prisoner's list, pending approval."""
        require(actor, Right.SUPERVISE, f"add a contact for {prison_number}")
        return await self._new(actor, prison_number, number, kind, label, ADDED)

    async def request(
        self, prison_number: str, number: str, kind: str, label: str, via: str
    ) -> ContactView:
        """A prisoner asks for a number (``via``: "kiosk", ...): it enters the staff's queue
        as pending, under the same checks and limits as staff's additions."""
        via = checks.text(via, "via", MAX_VIA, required=True)
        actor = Actor(f"{prison_number} via {via}", PRISONER_ROLE)
        checks.prison_number(prison_number)
        return await self._new(actor, prison_number, number, kind, label, REQUESTED)

    async def approve(
        self, actor: Actor, prison_number: str, number: str, reason: Any = ""
    ) -> ContactView:
        """Approve a pending (or blocked) contact: the prisoner may now call it. A blocked
        contact does not count towards the limits: approving one is refused when the prisoner
        has reached the limit of its kind."""
        require(actor, Right.SUPERVISE, f"approve a contact of {prison_number}")
        why = checks.reason(reason)
        checks.by(actor.name)
        normalised = checks.list_number(number, self.region)
        async with self.store.transaction() as tx:
            contacts, contact = await _listed(tx, prison_number, normalised)
            if contact is None:
                raise NotFound(f"{normalised} is not on the list of {prison_number}: add it first")
            if contact.status == ContactStatus.APPROVED:
                raise Conflict(f"{normalised} is already approved for {prison_number}")
            if contact.status == ContactStatus.BLOCKED:
                others = [c for c in contacts if c.number != normalised]
                self._check_limit(prison_number, others, ContactKind(contact.kind))
            new = replace(contact, status=ContactStatus.APPROVED.value)
            return await self._save(tx, actor, new, contact.status, APPROVED, why, why)

    async def block(
        self,
        actor: Actor,
        prison_number: str,
        number: str,
        reason: Any = "",
        kind: str = "social",
        label: str = "",
    ) -> ContactView:
        """Block a number for one prisoner; a number not yet on the list goes on it blocked
        (``kind`` and ``label`` are for that case; a label given replaces the old one)."""
        require(actor, Right.SUPERVISE, f"block a contact of {prison_number}")
        why = checks.reason(reason)
        the_kind = checks.kind(kind)
        label = checks.text(label, "label", checks.MAX_LABEL)
        checks.by(actor.name)
        normalised = checks.list_number(number, self.region)
        async with self.store.transaction() as tx:
            _, contact = await _listed(tx, prison_number, normalised)
            blocked = ContactStatus.BLOCKED.value
            if contact is None:
                new = ContactView(prison_number, normalised, the_kind.value, blocked, label)
                text = "; ".join(t for t in ("not listed", why) if t)
                return await self._save(tx, actor, new, "", BLOCKED, text, why)
            if contact.status == ContactStatus.BLOCKED:
                raise Conflict(f"{normalised} is already blocked for {prison_number}")
            new = replace(contact, status=blocked, label=label or contact.label)
            return await self._save(tx, actor, new, contact.status, BLOCKED, why, why)

    async def set_limit(
        self, actor: Actor, prison_number: str, number: str, minutes: int | None
    ) -> ContactView:
        """The longest call to this contact; None or 0 removes it. Kept in the history."""
        require(actor, Right.ADMINISTER, f"set a call limit for {prison_number}")
        seconds = limit_seconds(minutes)
        checks.by(actor.name)
        normalised = checks.list_number(number, self.region)
        async with self.store.transaction() as tx:
            _, contact = await _listed(tx, prison_number, normalised)
            if contact is None:
                raise NotFound(f"{normalised} is not on the list of {prison_number}")
            new = replace(contact, max_call_s=seconds)
            text = f"longest call {minutes} min" if seconds else "no call limit"
            return await self._save(tx, actor, new, contact.status, LIMIT, text)
