"""What the services hand out: frozen plain values, never database rows. The console, the
JSON API, the kiosk and the CLI all show these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CellView:
    name: str
    wing: str
    sip_username: str
    enabled: bool
    disabled_reason: str  # why it was disabled ("" when enabled)
    prisoners: tuple[str, ...] = ()  # prison numbers of the prisoners in it
    locked_until: datetime | None = None  # the handset's PIN lockout, if it ever had one
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class PrisonerView:
    prison_number: str
    name: str
    cell: str | None
    active: bool
    suspended_reason: str
    max_call_s: int | None = None  # their own longest call (None: no limit of their own)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Money:
    """An account in pence: balance (the ledger's sum), reserved (held for calls in
    progress), available (balance - reserved)."""

    balance: int
    reserved: int
    available: int


@dataclass(frozen=True)
class Limits:
    """What bounds a prisoner's calls, besides the windows and the allowances."""

    max_call_s: int | None  # their own (None: the site's applies)
    site_max_call_s: int | None
    max_social_contacts: int
    max_legal_contacts: int


@dataclass(frozen=True)
class PrisonerDetail:
    prisoner: PrisonerView
    money: Money
    limits: Limits


@dataclass(frozen=True)
class ContactView:
    prison_number: str
    number: str  # E.164
    kind: str  # social | legal
    status: str  # pending | approved | blocked
    label: str
    max_call_s: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class PendingContact:
    """One entry of the staff's queue: a number waiting for approval."""

    prison_number: str
    prisoner_name: str
    cell: str | None
    number: str
    kind: str
    label: str
    requested_at: datetime | None
    requested_by: str


@dataclass(frozen=True)
class ContactChangeView:
    prison_number: str
    number: str
    action: str  # added | requested | approved | blocked | limit
    old_status: str
    new_status: str
    changed_by: str
    changed_at: datetime
    note: str  # the reason given, or what was done


@dataclass(frozen=True)
class GlobalNumberView:
    number: str
    policy: str  # blocked | allowed
    privileged: bool
    label: str
    changed_by: str
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Entry:
    """A ledger entry."""

    id: int
    prison_number: str
    kind: str  # topup | charge | refund | adjustment
    amount_pence: int
    balance_after: int
    idempotency_key: str
    reference: str
    call_id: int | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class StatementLine:
    """A ledger entry, with its call (number, start, talk time, charge) for a call charge; or
    a connected call that cost nothing (``entry`` None), listed with its talk time."""

    entry: Entry | None
    number: str | None
    started_at: datetime | None
    talk_seconds: int | None
    charge_pence: int | None
    call_id: int | None = None
    at: datetime | None = None  # the entry's time, or when the free call was settled
    balance_after: int = 0  # the balance after this line (unchanged by a free call)


@dataclass(frozen=True)
class TopUp:
    entry: Entry
    money: Money  # after it
    already_applied: bool  # a retry with the same reference: nothing new was credited
