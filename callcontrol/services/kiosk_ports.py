"""What the prisoners' kiosk reads and writes: its own port (the account and cellmates, with
their PIN hashes: adapters/db/kiosk_store.py) and the operator's services it calls for
everything else (services/accounts.py, contacts.py, prisoners.py: one path per act), as the
narrow Protocols the kiosk needs of them; and the plain values it shows. Nothing here takes a
prisoner from the page: every call names the prisoner of the session, fixed at sign-in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcontrol.domain.model import Prisoner
from callcontrol.services.views import ContactView, Money, PrisonerView, StatementLine


class KioskRefused(Exception):
    """A prisoner's request refused; the message is for the prisoner, in plain words."""


@dataclass(frozen=True)
class StatementItem:
    at: datetime | None
    kind: str  # call | topup | refund | adjustment
    number: str | None  # the number called, for a call
    amount_pence: int  # + in, - out; 0 for a free call
    balance_after_pence: int
    talk_seconds: int | None = None


@dataclass(frozen=True)
class CallItem:
    """One of the prisoner's own calls, as the kiosk shows it: never a recording."""

    at: datetime
    number: str  # as normalised, else as keyed
    outcome: str  # connected | not_connected | refused
    reason: str  # the refusal's reason (domain.model.Reason), "" for a call that went through
    talk_seconds: int | None
    charge_pence: int | None


class KioskStore(Protocol):
    async def account(self, prison_number: str) -> Prisoner | None:
        """The prisoner with exactly this prison number ("" finds none), with their cell and
        PIN hash."""
        ...

    async def cellmates(self, prisoner: Prisoner) -> Sequence[Prisoner]:
        """The other prisoners in this prisoner's cell."""
        ...


class Accounts(Protocol):  # services/accounts.py's AccountService
    async def balance(self, prison_number: str) -> Money: ...

    async def statement(self, prison_number: str) -> list[StatementLine]: ...


class Contacts(Protocol):  # services/contacts.py's ContactService
    async def of(self, prison_number: str) -> list[ContactView]: ...

    async def request(
        self, prison_number: str, number: str, kind: str, label: str, via: str
    ) -> ContactView: ...


class OwnPin(Protocol):  # services/prisoners.py's PrisonerService
    async def set_own_pin(self, prison_number: str, pin: str, via: str) -> PrisonerView: ...
