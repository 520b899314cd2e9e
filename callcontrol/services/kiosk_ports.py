"""What the prisoners' kiosk reads and writes, as ports (adapters/db/kiosk_store.py implements
them) and the plain values they return. Nothing here takes a prisoner from the page: every
call names the prisoner of the session, whom services/kiosk.py fixed at sign-in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcontrol.domain.model import Prisoner


class KioskRefused(Exception):
    """A prisoner's request refused; the message is for the prisoner, in plain words."""


@dataclass(frozen=True)
class Money:
    balance_pence: int
    reserved_pence: int  # held for a call in progress
    available_pence: int  # what can be spent now: balance - reserved


@dataclass(frozen=True)
class StatementItem:
    at: datetime | None
    what: str  # "Top-up", "Call to +44...", "Adjustment"
    amount_pence: int  # + in, - out; 0 for a free call
    balance_after_pence: int
    talk_seconds: int | None = None


@dataclass(frozen=True)
class CallItem:
    """One of the prisoner's own calls, as the kiosk shows it: never a recording."""

    at: datetime
    number: str  # as normalised, else as keyed
    outcome: str  # "connected", "not connected", "refused"
    reason: str  # the refusal's reason in words ("" for a call that went through)
    talk_seconds: int | None
    charge_pence: int | None


@dataclass(frozen=True)
class ContactItem:
    number: str
    kind: str  # social | legal
    status: str  # pending | approved | blocked
    label: str


class KioskStore(Protocol):
    async def account(self, prison_number: str) -> Prisoner | None:
        """The prisoner with exactly this prison number ("" finds none), with their cell."""
        ...

    async def cellmates(self, prisoner: Prisoner) -> Sequence[Prisoner]:
        """The other prisoners in this prisoner's cell."""
        ...

    async def change_pin(self, prisoner: Prisoner, new_hash: str, at: datetime) -> bool:
        """Store the new PIN hash if the stored one is still ``prisoner.pin_hash``, audited as
        the prisoner's own act; False when it changed meanwhile (nothing written)."""
        ...

    async def money(self, prisoner: Prisoner) -> Money: ...

    async def statement(self, prisoner: Prisoner) -> Sequence[StatementItem]:
        """The prisoner's account, newest first."""
        ...

    async def calls(self, prisoner: Prisoner, limit: int) -> Sequence[CallItem]:
        """The prisoner's own latest calls, newest first."""
        ...

    async def contacts(self, prisoner: Prisoner) -> Sequence[ContactItem]: ...

    async def request_contact(
        self, prisoner: Prisoner, number: str, kind: str, label: str
    ) -> ContactItem:
        """Put the number on the prisoner's list, pending staff's approval, under the contact
        limits; KioskRefused (why, for the prisoner) when it cannot be."""
        ...
