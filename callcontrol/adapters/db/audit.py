"""The audit log: who did what, to what, when and why (listening in, cutting a call, disabling a
cell, suspending a prisoner, exporting or purging recordings, ...).

Entries are only ever appended: the database refuses to change or remove one (triggers made by
migration 0003). ``record`` only flushes; it is written with the change it accounts for, in the
caller's transaction, or not at all.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db.tables import AuditEntry, utcnow

# The actions known today; others may be added (a lowercase word: letters, digits, _ and -).
ACTIONS = ("listen", "cut", "disable", "enable", "suspend", "resume", "export", "purge")
ROLES = ("officer", "admin", "system")
ACTION = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_ACTOR = 100
MAX_ROLE = 32
MAX_TARGET = 200
MAX_TEXT = 2000


class AuditError(ValueError):
    """An audit entry that cannot be written as given (nothing was written)."""


def _text(what: str, value: str, longest: int, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise AuditError(f"audit {what} is empty")
    if len(value) > longest:
        raise AuditError(f"audit {what} is longer than {longest} characters")
    if any(not (c.isprintable() or c in "\n\t") for c in value):
        raise AuditError(f"audit {what} contains control characters")
    return value


async def record(
    session: AsyncSession,
    *,
    actor: str,
    role: str,
    action: str,
    target: str,
    reason: str = "",
    detail: str = "",
) -> AuditEntry:
    """Append an entry (flushed, not committed); AuditError when a field is not acceptable."""
    if not ACTION.fullmatch(action):
        raise AuditError(f"audit action {action!r} is not a lowercase word (e.g. 'export')")
    entry = AuditEntry(
        at=utcnow(),
        actor=_text("actor", actor, MAX_ACTOR),
        role=_text("role", role, MAX_ROLE),
        action=action,
        target=_text("target", target, MAX_TARGET),
        reason=_text("reason", reason, MAX_TEXT, required=False),
        detail=_text("detail", detail, MAX_TEXT, required=False),
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession, limit: int = 100, action: str | None = None
) -> list[AuditEntry]:
    """The latest entries, newest first (``action``: only those)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(0, limit))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list((await session.scalars(query)).all())
