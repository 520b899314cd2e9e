"""The rules: may this handset, this prisoner, call this number?

Each step is a plain function of plain values, returning a refusal (or None to go on)
or, for the number, the final Decision. The service layer fetches the rows, calls these
in order and acts on the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    Decision,
    GlobalNumber,
    GlobalPolicy,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.numbers import is_short_code, normalise_dialled
from callcontrol.domain.pins import PinKeys, pin_matches


@dataclass(frozen=True)
class SitePolicy:
    region: str = "GB"
    emergency_calls_allowed: bool = False


def _allow(reason: Reason, number: str | None, *, privileged: bool) -> Decision:
    return Decision(Outcome.ALLOW, reason, number=number, privileged=privileged)


def check_handset(handset: Handset | None) -> Decision | None:
    """Refuse an unknown or disabled handset; None means go on."""
    if handset is None:
        return Decision.refuse(Reason.UNKNOWN_HANDSET)
    if not handset.enabled:
        return Decision.refuse(Reason.HANDSET_DISABLED, detail=f"cell {handset.cell}")
    return None


def matching_prisoners(
    prisoners_in_cell: Sequence[Prisoner], pin: str, secret: bytes | PinKeys
) -> list[Prisoner]:
    """Every prisoner in the cell for whom ``pin`` is their PIN.

    Every stored hash is compared (no early exit), so the time taken does not say
    which prisoner, if any, matched. Also useful to refuse a new PIN that a cellmate
    already uses.
    """
    return [p for p in prisoners_in_cell if pin_matches(secret, p.prison_number, pin, p.pin_hash)]


def match_pin(
    prisoners_in_cell: Sequence[Prisoner], pin: str, secret: bytes | PinKeys
) -> Prisoner | None:
    """The prisoner in this cell whose PIN this is, or None.

    If two cellmates share a PIN we cannot tell who is calling, and guessing would put
    one prisoner's call on the other's contact list and record: no match, so the call is
    refused until one of them changes PIN.
    """
    matches = matching_prisoners(prisoners_in_cell, pin, secret)
    return matches[0] if len(matches) == 1 else None


def check_prisoner(
    prisoner: Prisoner, locked_until: datetime | None, now: datetime
) -> Decision | None:
    """Refuse a locked PIN or a suspended prisoner; None means go on."""
    if locked_until is not None and locked_until > now:
        return Decision.refuse(Reason.PIN_LOCKED, detail=f"locked until {locked_until.isoformat()}")
    if not prisoner.active:
        return Decision.refuse(Reason.PRISONER_SUSPENDED)
    return None


# Parsing and validating a number (phonenumbers) is most of a decision's own CPU, and prisoners
# dial the few numbers of their lists again and again: the answers, which depend on nothing but
# these arguments, are kept (a bounded number of them).
_normalised = lru_cache(maxsize=4096)(normalise_dialled)


def decide_number(
    dialled: str,
    *,
    contacts: Sequence[Contact],
    global_numbers: Mapping[str, GlobalNumber],
    policy: SitePolicy,
    call_in_progress: bool,
) -> Decision:
    """May this prisoner (whose ``contacts`` these are) call ``dialled``?

    Order: not understood; emergency; blocked (globally or as a contact), which always
    beats allowed; one call at a time; globally allowed; approved contact; pending;
    otherwise not approved.
    """
    listed_short_codes = frozenset(number for number in global_numbers if is_short_code(number))
    normalised = _normalised(dialled, policy.region, listed_short_codes)
    number = normalised.number
    if number is None:
        return Decision.refuse(Reason.INVALID_NUMBER, detail=normalised.problem)

    if normalised.emergency:
        if not policy.emergency_calls_allowed:
            return Decision.refuse(
                Reason.EMERGENCY_NUMBER, number, detail="emergency calls not allowed here"
            )
        # Privileged: an emergency call is never recorded or monitored by us (the
        # emergency service keeps its own record), and needs no contact approval.
        return _allow(Reason.EMERGENCY_ALLOWED, number, privileged=True)

    entry = global_numbers.get(number)
    mine = [c for c in contacts if c.number == number]

    if entry is not None and entry.policy == GlobalPolicy.BLOCKED:
        return Decision.refuse(Reason.BLOCKED_NUMBER, number, detail="blocked for everyone")
    if any(c.status == ContactStatus.BLOCKED for c in mine):
        return Decision.refuse(Reason.BLOCKED_NUMBER, number, detail="blocked contact")

    if call_in_progress:
        return Decision.refuse(Reason.CALL_IN_PROGRESS, number)

    if entry is not None and entry.policy == GlobalPolicy.ALLOWED:
        return _allow(Reason.GLOBAL_ALLOWED, number, privileged=entry.privileged)

    approved = [c for c in mine if c.status == ContactStatus.APPROVED]
    if approved:
        # A number approved as a legal contact is privileged: not recorded, not monitored.
        legal = any(c.kind == ContactKind.LEGAL for c in approved)
        return _allow(Reason.APPROVED_CONTACT, number, privileged=legal)

    if any(c.status == ContactStatus.PENDING for c in mine):
        return Decision.refuse(Reason.CONTACT_PENDING, number)

    return Decision.refuse(Reason.NOT_APPROVED, number)


def contact_limit_reached(
    existing: Sequence[Contact], kind: ContactKind, max_social: int, max_legal: int
) -> bool:
    """True when adding one more contact of ``kind`` would exceed its limit.

    Blocked contacts do not count towards the limit.
    """
    limit = max_legal if kind == ContactKind.LEGAL else max_social
    current = sum(1 for c in existing if c.kind == kind and c.status != ContactStatus.BLOCKED)
    return current + 1 > limit
