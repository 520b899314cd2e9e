"""The balance enquiry: a prisoner keys the service code after the PIN and hears their available
credit and the minutes left today, instead of placing a call.

The figures are domain/balance.py's; this works them out, without I/O, from what the Authoriser
gathered: the prisoner's facts (the same one read as a decision's: money, use, contacts) and the
site's global numbers and tariffs (its GlobalsSource). Nothing is dialled, reserved, recorded or
charged: the Authoriser stores the enquiry as a decision with outcome "service", reason
"balance_enquiry" (Authoriser.decide, in the unit of work of the read).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from callcontrol.domain.balance import BalanceFigures, balance_figures, enquiry_rate
from callcontrol.domain.decide import CallPolicy, PrisonerFacts
from callcontrol.domain.model import Decision, GlobalNumber, Reason
from callcontrol.domain.tariffs import Tariff
from callcontrol.domain.windows import (
    local_day_bounds,
    seconds_left_in_windows_today,
    windows_for_wing,
)


def balance_enquiry(
    facts: PrisonerFacts,
    global_numbers: Mapping[str, GlobalNumber],
    tariffs: Mapping[str, Tariff],
    policy: CallPolicy,
    now: datetime,
) -> tuple[Decision, BalanceFigures]:
    """The prisoner's figures now, and the decision that records the enquiry."""
    b = policy.billing
    ctx = facts.billing
    local = now.astimezone(b.tz)
    _, day_end = local_day_bounds(now, b.tz)
    windows = windows_for_wing(b.windows, b.wing_windows, ctx.wing)
    figures = balance_figures(
        available_pence=ctx.available_pence,
        usage=ctx.usage,
        caps=b.caps,
        rate=enquiry_rate(facts.contacts, global_numbers, tariffs, policy.site.region, local),
        rounding=b.rounding,
        windows_left_s=seconds_left_in_windows_today(windows, local),
        day_left_s=max(0, int((day_end - now).total_seconds())),
    )
    return Decision.service(Reason.BALANCE_ENQUIRY, detail=figures.describe()), figures
