"""Per-prisoner and per-contact call-length limits (the strictest limit always wins)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db import admin
from callcontrol.adapters.db.tables import Contact, ContactChange, Prisoner, utcnow

MAX_LIMIT_S = 24 * 3600


def _seconds(minutes: int | None) -> int | None:
    if minutes is None or minutes == 0:
        return None  # no limit of its own
    if not 1 <= minutes <= MAX_LIMIT_S // 60:
        raise admin.AdminError(f"a call limit is 1 to {MAX_LIMIT_S // 60} minutes, or 0 for none")
    return minutes * 60


async def set_prisoner_limit(
    session: AsyncSession, prison_number: str, minutes: int | None
) -> Prisoner:
    """The longest call this prisoner may make; None or 0 removes the limit."""
    prisoner = await admin.get_prisoner(session, prison_number)
    prisoner.max_call_s = _seconds(minutes)
    await session.flush()
    return prisoner


async def set_contact_limit(
    session: AsyncSession,
    prison_number: str,
    number: str,
    minutes: int | None,
    changed_by: str,
    region: str,
) -> Contact:
    """The longest call to this contact; None or 0 removes it. Kept in the contact history."""
    normalised = admin._list_number(number, region)
    prisoner = await admin.get_prisoner(session, prison_number)
    contact = await admin._find_contact(session, prisoner, normalised)
    if contact is None:
        raise admin.AdminError(f"{normalised} is not on the list of {prison_number}")
    contact.max_call_s = _seconds(minutes)
    session.add(
        ContactChange(
            contact_id=contact.id,
            prisoner_id=prisoner.id,
            number=contact.number,
            action="limit",
            old_status=contact.status,
            new_status=contact.status,
            changed_by=admin._by(changed_by),
            changed_at=utcnow(),
            note=f"longest call {minutes} min" if contact.max_call_s else "no call limit",
        )
    )
    await session.flush()
    return contact
