"""The balance enquiry: a prisoner keys the service code after the PIN and hears their available
credit and the minutes left today, instead of placing a call.

The figures are domain/balance.py's; this gathers what they need through the decision's own
port (CallStore: the billing context, the contacts, the global list), in the read block the
decision already holds. Nothing is dialled, reserved, recorded or charged: the Authoriser stores
the enquiry as a decision with outcome "service", reason "balance_enquiry".
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from callcontrol.domain.balance import BalanceFigures, balance_figures, enquiry_rate
from callcontrol.domain.model import Decision, Prisoner, Reason
from callcontrol.domain.rules import SitePolicy
from callcontrol.domain.windows import (
    local_day_bounds,
    local_week_start,
    seconds_left_in_windows_today,
    windows_for_wing,
)

if TYPE_CHECKING:  # authorise.py calls this module (Authoriser.balance_enquiry)
    from callcontrol.services.authorise import BillingPolicy, CallStore

# The number the billing context is asked about: none (no contact's own limit applies).
NO_NUMBER = ""


async def balance_enquiry(
    store: CallStore,
    prisoner: Prisoner,
    *,
    policy: SitePolicy,
    billing: BillingPolicy,
    now: datetime,
) -> tuple[Decision, BalanceFigures]:
    """The prisoner's figures now, and the decision that records the enquiry."""
    b = billing
    local = now.astimezone(b.tz)
    day_start, day_end = local_day_bounds(now, b.tz)
    ctx = await store.billing_context(
        prisoner.id, NO_NUMBER, day_start, local_week_start(now, b.tz)
    )
    contacts = await store.contacts(prisoner.id)
    global_numbers = await store.global_numbers()
    windows = windows_for_wing(b.windows, b.wing_windows, ctx.wing)
    figures = balance_figures(
        available_pence=ctx.available_pence,
        usage=ctx.usage,
        caps=b.caps,
        rate=enquiry_rate(contacts, global_numbers, ctx.tariffs, policy.region, local),
        rounding=b.rounding,
        windows_left_s=seconds_left_in_windows_today(windows, local),
        day_left_s=max(0, int((day_end - now).total_seconds())),
    )
    return Decision.service(Reason.BALANCE_ENQUIRY, detail=figures.describe()), figures
