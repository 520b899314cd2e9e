"""The whole decision on a number, as one plain function: may this prisoner call it now, for how
long, and at what price?

``decide_call`` joins the rules on the number (rules.decide_number), the calling windows, the
tariffs and the time limit (limits.call_limit) over the facts the store reads in one round trip
(``PrisonerFacts``) and the site's global numbers and tariffs. No I/O: the service gathers the
facts, this answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from callcontrol.domain.limits import CallLimit, Caps, Usage, call_limit
from callcontrol.domain.model import Contact, Decision, GlobalNumber, Reason
from callcontrol.domain.numbers import destination_class
from callcontrol.domain.rules import SitePolicy, decide_number
from callcontrol.domain.tariffs import Rounding, Tariff, rate_for
from callcontrol.domain.windows import (
    Window,
    local_day_bounds,
    local_week_start,
    seconds_left_in_window,
    windows_for_wing,
)

# A number's tariff class, kept as rules._normalised keeps the parsing (the same few numbers).
_destination_class = lru_cache(maxsize=4096)(destination_class)


@dataclass(frozen=True)
class BillingPolicy:
    """The site's billing settings ([billing])."""

    rounding: Rounding
    max_call_s: int
    caps: Caps
    windows: tuple[Window, ...]
    wing_windows: Mapping[str, tuple[Window, ...]]
    tz: ZoneInfo


@dataclass(frozen=True)
class CallPolicy:
    """Everything the site decides a call by: its numbering rules and its billing."""

    site: SitePolicy
    billing: BillingPolicy


@dataclass(frozen=True)
class BillingContext:
    """What the store knows of the prisoner's money and use, for one decision."""

    available_pence: int
    usage: Usage
    wing: str
    prisoner_max_s: int | None


@dataclass(frozen=True)
class PrisonerFacts:
    """What one decision reads about one prisoner, all at once (the store's one round trip)."""

    contacts: tuple[Contact, ...]
    # The longest call to each contact that has a limit of its own (number -> seconds).
    contact_max_s: Mapping[str, int]
    call_in_progress: bool
    billing: BillingContext


@dataclass(frozen=True)
class DecisionFacts:
    """Everything ``decide_call`` reads: the number as dialled, the prisoner's facts, and the
    site's global numbers and tariffs (which a cache may supply)."""

    dialled: str
    prisoner: PrisonerFacts
    global_numbers: Mapping[str, GlobalNumber]
    tariffs: Mapping[str, Tariff]


@dataclass(frozen=True)
class CallPlan:
    """How an allowed call is limited and paid for: fixed at the decision, used to settle."""

    limit: CallLimit
    rate: int  # hundredths of a penny a minute
    destination_class: str
    rounding: Rounding
    free: bool


def usage_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start of today and of this week in the prison's time zone (as UTC-aware instants):
    the allowance counts the calls started since."""
    day_start, _ = local_day_bounds(now, tz)
    return day_start, local_week_start(now, tz)


def is_free(decision: Decision) -> bool:
    """Privileged calls (legal advisers, the Samaritans) and numbers allowed for everyone are
    free, and do not count against the family's daily and weekly allowance."""
    return decision.privileged or decision.reason in (
        Reason.GLOBAL_ALLOWED,
        Reason.EMERGENCY_ALLOWED,
    )


def decide_call(
    facts: DecisionFacts, policy: CallPolicy, now: datetime
) -> tuple[Decision, CallPlan | None]:
    """The decision on ``facts.dialled``, and for an allowed call its limit and price.

    The number's rules first (rules.decide_number: blocked, in progress, approved...); an
    allowed number is then held to the calling windows, the caps, the prisoner's and the
    contact's own limits and the credit (limits.call_limit), any of which may still refuse."""
    p = facts.prisoner
    decision = decide_number(
        facts.dialled,
        contacts=p.contacts,
        global_numbers=facts.global_numbers,
        policy=policy.site,
        call_in_progress=p.call_in_progress,
    )
    number = decision.number
    if not decision.allowed or number is None:
        return decision, None
    b = policy.billing
    local = now.astimezone(b.tz)
    free = is_free(decision)
    dest = _destination_class(number, policy.site.region)
    rate = 0 if free else rate_for(facts.tariffs, dest, local)
    windows = windows_for_wing(b.windows, b.wing_windows, p.billing.wing)
    limit = call_limit(
        site_max_s=b.max_call_s,
        prisoner_max_s=p.billing.prisoner_max_s,
        contact_max_s=p.contact_max_s.get(number),
        usage=p.billing.usage,
        caps=Caps() if free else b.caps,
        window_left_s=seconds_left_in_window(windows, local),
        available_pence=p.billing.available_pence,
        rate=rate,
        rounding=b.rounding,
        free=free,
    )
    if isinstance(limit, Decision):
        return Decision.refuse(limit.reason, number, limit.detail), None
    return decision, CallPlan(limit, rate, dest, b.rounding, free)
