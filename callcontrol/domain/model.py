"""Plain values of the domain: what a cell, a prisoner, a contact and a decision are.

No I/O here: these are built by the adapters from rows and handed to the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class CellEndpoint:
    """A cell handset's SIP endpoint as Asterisk needs it: its digest hash, never a password."""

    cell: str
    sip_username: str
    sip_realm: str
    sip_md5_cred: str


class ContactKind(StrEnum):
    SOCIAL = "social"
    LEGAL = "legal"


class ContactStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    BLOCKED = "blocked"


class GlobalPolicy(StrEnum):
    BLOCKED = "blocked"  # blocked for every prisoner
    ALLOWED = "allowed"  # allowed for every prisoner (free-phone help lines, the Samaritans)


class Outcome(StrEnum):
    ALLOW = "allow"
    REFUSE = "refuse"
    # A service code keyed after the PIN (the balance enquiry): answered, no call placed.
    SERVICE = "service"


class Reason(StrEnum):
    """Why a call was allowed or refused. These strings are stored, logged and shown."""

    APPROVED_CONTACT = "approved_contact"
    GLOBAL_ALLOWED = "global_allowed"
    EMERGENCY_ALLOWED = "emergency_allowed"
    UNKNOWN_HANDSET = "unknown_handset"
    HANDSET_DISABLED = "handset_disabled"
    NO_PIN = "no_pin"
    WRONG_PIN = "wrong_pin"
    PIN_LOCKED = "pin_locked"
    PRISONER_SUSPENDED = "prisoner_suspended"
    INVALID_NUMBER = "invalid_number"
    EMERGENCY_NUMBER = "emergency_number"
    BLOCKED_NUMBER = "blocked_number"
    CONTACT_PENDING = "contact_pending"
    NOT_APPROVED = "not_approved"
    CALL_IN_PROGRESS = "call_in_progress"
    CALLER_HUNG_UP = "caller_hung_up"
    INTERNAL_ERROR = "internal_error"
    INSUFFICIENT_CREDIT = "insufficient_credit"
    OUTSIDE_HOURS = "outside_hours"
    DAILY_CALLS_CAP = "daily_calls_cap"
    DAILY_MINUTES_CAP = "daily_minutes_cap"
    WEEKLY_MINUTES_CAP = "weekly_minutes_cap"
    BALANCE_ENQUIRY = "balance_enquiry"  # outcome service: the balance and minutes were said


@dataclass(frozen=True)
class Handset:
    cell: str
    sip_username: str
    enabled: bool


@dataclass(frozen=True)
class Prisoner:
    id: int
    prison_number: str
    name: str
    pin_hash: str
    cell: str | None
    active: bool


@dataclass(frozen=True)
class Contact:
    number: str  # E.164
    kind: ContactKind
    status: ContactStatus
    label: str = ""


@dataclass(frozen=True)
class GlobalNumber:
    number: str  # E.164, or a short code such as 116123
    policy: GlobalPolicy
    privileged: bool = False
    label: str = ""


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: Reason
    number: str | None = None  # normalised (E.164 or short code), when the number was understood
    privileged: bool = False  # never recorded, never monitored
    detail: str = ""  # for the log: what exactly was wrong

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    @classmethod
    def refuse(cls, reason: Reason, number: str | None = None, detail: str = "") -> Decision:
        return cls(Outcome.REFUSE, reason, number=number, detail=detail)

    @classmethod
    def service(cls, reason: Reason, detail: str = "") -> Decision:
        """A service code answered (never allowed: nothing is dialled, nothing reserved)."""
        return cls(Outcome.SERVICE, reason, detail=detail)
