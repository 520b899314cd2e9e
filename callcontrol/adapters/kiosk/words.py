"""What the kiosk's pages say for the service's codes, in a prisoner's words."""

from __future__ import annotations

from callcontrol.domain.model import Reason

REASONS = {
    Reason.WRONG_PIN: "wrong PIN",
    Reason.NO_PIN: "no PIN keyed",
    Reason.PIN_LOCKED: "phone locked after wrong PINs",
    Reason.PRISONER_SUSPENDED: "calls suspended",
    Reason.INVALID_NUMBER: "not a number that can be called",
    Reason.EMERGENCY_NUMBER: "emergency number",
    Reason.BLOCKED_NUMBER: "number blocked",
    Reason.CONTACT_PENDING: "contact waiting for approval",
    Reason.NOT_APPROVED: "number not on your list",
    Reason.CALL_IN_PROGRESS: "another call in progress",
    Reason.CALLER_HUNG_UP: "hung up before the call",
    Reason.INTERNAL_ERROR: "system fault",
    Reason.INSUFFICIENT_CREDIT: "not enough credit",
    Reason.OUTSIDE_HOURS: "outside calling hours",
    Reason.DAILY_CALLS_CAP: "calls for today used up",
    Reason.DAILY_MINUTES_CAP: "minutes for today used up",
    Reason.WEEKLY_MINUTES_CAP: "minutes for this week used up",
}
OUTCOMES = {"connected": "connected", "not_connected": "not answered", "refused": "refused"}
ENTRIES = {"topup": "Top-up", "refund": "Refund", "adjustment": "Adjustment"}
CONTACT_STATES = {
    "approved": "You can call",
    "pending": "Waiting for staff",
    "blocked": "Blocked",
}


def reason(code: str) -> str:
    try:
        return REASONS.get(Reason(code), code.replace("_", " "))
    except ValueError:
        return code.replace("_", " ")


def entry(kind: str, number: str | None) -> str:
    return f"Call to {number}" if kind == "call" else ENTRIES.get(kind, kind)
