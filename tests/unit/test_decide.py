"""decide_call: the whole decision on a number, as a table of facts and what they decide."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcontrol.domain.decide import (
    BillingContext,
    BillingPolicy,
    CallPolicy,
    DecisionFacts,
    PrisonerFacts,
    decide_call,
    usage_bounds,
)
from callcontrol.domain.limits import Caps, Usage
from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    GlobalNumber,
    GlobalPolicy,
    Outcome,
    Reason,
)
from callcontrol.domain.rules import SitePolicy
from callcontrol.domain.tariffs import DEFAULT_TARIFFS, Rounding, Tariff, tariffs_by_class
from callcontrol.domain.windows import parse_windows, parse_wing_windows

LONDON_TZ = ZoneInfo("Europe/London")
WEDNESDAY = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # 10:00 in London
SATURDAY = datetime(2024, 5, 4, 9, 0, tzinfo=UTC)
LONDON, MOBILE, SOLICITOR, SAMARITANS = "+442079460000", "+447911123456", "+442079460999", "116123"

POLICY = CallPolicy(
    SitePolicy(),
    BillingPolicy(
        rounding=Rounding.PER_SECOND,
        max_call_s=1800,
        caps=Caps(),
        windows=(),
        wing_windows={},
        tz=LONDON_TZ,
    ),
)
CONTACTS = (
    Contact(LONDON, ContactKind.SOCIAL, ContactStatus.APPROVED),
    Contact(MOBILE, ContactKind.SOCIAL, ContactStatus.APPROVED),
    Contact(SOLICITOR, ContactKind.LEGAL, ContactStatus.APPROVED),
    Contact("+442079460001", ContactKind.SOCIAL, ContactStatus.PENDING),
)
GLOBALS = {
    SAMARITANS: GlobalNumber(SAMARITANS, GlobalPolicy.ALLOWED, privileged=True),
    "+442079460002": GlobalNumber("+442079460002", GlobalPolicy.ALLOWED),
}


def facts(dialled: str = "02079460000", **changes: Any) -> DecisionFacts:
    """The prisoner's facts: 500p, nothing used, wing A, no limits, no call in progress; with
    ``changes`` to PrisonerFacts or BillingContext fields, or ``global_numbers``/``tariffs``."""
    billing = BillingContext(500, Usage(0, 0, 0), "A", None)
    billing = replace(billing, **{k: v for k, v in changes.items() if hasattr(billing, k)})
    prisoner = PrisonerFacts(CONTACTS, {}, False, billing)
    prisoner = replace(
        prisoner, **{k: v for k, v in changes.items() if k in ("contacts", "contact_max_s")}
    )
    prisoner = replace(prisoner, call_in_progress=changes.get("call_in_progress", False))
    return DecisionFacts(
        dialled,
        prisoner,
        changes.get("global_numbers", GLOBALS),
        changes.get("tariffs", tariffs_by_class(DEFAULT_TARIFFS)),
    )


def billing(**changes: Any) -> CallPolicy:
    return replace(POLICY, billing=replace(POLICY.billing, **changes))


# (what, facts, policy, now, reason, (seconds, reserve, limited by, rate, free) or None)
CASES = [
    ("an approved landline: the site's longest call, at the landline rate",
     facts(), POLICY, WEDNESDAY, Reason.APPROVED_CONTACT, (1800, 93, "site_max", 310, False)),
    ("a number not on the list",
     facts("02079460555"), POLICY, WEDNESDAY, Reason.NOT_APPROVED, None),
    ("a pending contact",
     facts("02079460001"), POLICY, WEDNESDAY, Reason.CONTACT_PENDING, None),
    ("not understood", facts("12"), POLICY, WEDNESDAY, Reason.INVALID_NUMBER, None),
    ("a call already in progress",
     facts(call_in_progress=True), POLICY, WEDNESDAY, Reason.CALL_IN_PROGRESS, None),
    ("blocked for everyone beats approved",
     facts(global_numbers={LONDON: GlobalNumber(LONDON, GlobalPolicy.BLOCKED)}), POLICY,
     WEDNESDAY, Reason.BLOCKED_NUMBER, None),
    ("a legal contact: free and privileged, even with no credit",
     facts("02079460999", available_pence=0), POLICY, WEDNESDAY, Reason.APPROVED_CONTACT,
     (1800, 0, "site_max", 0, True)),
    ("a privileged number for everyone: free with no credit",
     facts(SAMARITANS, available_pence=0), POLICY, WEDNESDAY, Reason.GLOBAL_ALLOWED,
     (1800, 0, "site_max", 0, True)),
    ("allowed for everyone, not privileged: free all the same",
     facts("02079460002", available_pence=0), POLICY, WEDNESDAY, Reason.GLOBAL_ALLOWED,
     (1800, 0, "site_max", 0, True)),
    ("a mobile with 10p: 91 seconds",
     facts("07911123456", available_pence=10), POLICY, WEDNESDAY, Reason.APPROVED_CONTACT,
     (91, 10, "credit", 688, False)),
    ("less than the first minute",
     facts("07911123456", available_pence=6), POLICY, WEDNESDAY, Reason.INSUFFICIENT_CREDIT, None),
    ("the contact's own limit",
     facts(contact_max_s={LONDON: 300}), POLICY, WEDNESDAY, Reason.APPROVED_CONTACT,
     (300, 16, "contact", 310, False)),
    ("another contact's limit does not apply",
     facts(contact_max_s={MOBILE: 300}), POLICY, WEDNESDAY, Reason.APPROVED_CONTACT,
     (1800, 93, "site_max", 310, False)),
    ("the prisoner's own limit",
     facts(prisoner_max_s=120, contact_max_s={LONDON: 300}), POLICY, WEDNESDAY,
     Reason.APPROVED_CONTACT, (120, 6, "prisoner", 310, False)),
    ("outside the calling window",
     facts(), billing(windows=parse_windows(["18:00-20:00"])), WEDNESDAY, Reason.OUTSIDE_HOURS,
     None),
    ("the wing's own window, open: ten minutes left",
     facts(wing="B"),
     billing(windows=parse_windows(["18:00-20:00"]),
             wing_windows=parse_wing_windows([("B", ["09:00-10:10"])])),
     WEDNESDAY, Reason.APPROVED_CONTACT, (600, 31, "window", 310, False)),
    ("the day's calls used up",
     facts(usage=Usage(3, 600, 600)), billing(caps=Caps(max_calls_per_day=3)), WEDNESDAY,
     Reason.DAILY_CALLS_CAP, None),
    ("a free call is not held to the caps",
     facts("02079460999", usage=Usage(3, 600, 600)), billing(caps=Caps(max_calls_per_day=3)),
     WEDNESDAY, Reason.APPROVED_CONTACT, (1800, 0, "site_max", 0, True)),
    ("the week's minutes nearly used",
     facts(usage=Usage(1, 60, 3540)), billing(caps=Caps(max_minutes_per_week=60)), WEDNESDAY,
     Reason.APPROVED_CONTACT, (60, 3, "weekly_minutes", 310, False)),
    ("the weekend rate on a Saturday",
     facts(tariffs=tariffs_by_class([Tariff("uk_landline", 310, 100), Tariff("other", 688)])),
     POLICY, SATURDAY, Reason.APPROVED_CONTACT, (1800, 30, "site_max", 100, False)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("facts_", "policy", "now", "reason", "plan"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide_call(
    facts_: DecisionFacts,
    policy: CallPolicy,
    now: datetime,
    reason: Reason,
    plan: tuple[int, int, str, int, bool] | None,
) -> None:
    decision, got = decide_call(facts_, policy, now)
    assert decision.reason is reason, decision
    if plan is None:
        assert decision.outcome is Outcome.REFUSE and got is None
        return
    assert decision.allowed and got is not None
    assert (got.limit.seconds, got.limit.reserve_pence, got.limit.limited_by) == plan[:3]
    assert (got.rate, got.free, got.rounding) == (plan[3], plan[4], Rounding.PER_SECOND)


def test_a_refusal_by_the_limits_keeps_the_number() -> None:
    decision, plan = decide_call(facts("07911123456", available_pence=6), POLICY, WEDNESDAY)
    assert (decision.number, plan) == (MOBILE, None)


def test_the_allowance_counts_from_the_local_day_and_week() -> None:
    day, week = usage_bounds(WEDNESDAY, LONDON_TZ)  # BST: local midnight is 23:00 UTC
    assert day == datetime(2024, 4, 30, 23, 0, tzinfo=UTC)
    assert week == datetime(2024, 4, 28, 23, 0, tzinfo=UTC)  # Monday 29 April, local
