"""The operator's store: one transaction type (SqlOperatorTx) that implements the ports of
services/cells.py, prisoners.py, contacts.py, numbers.py and accounts.py, with the audit log
written in the same transaction as the change it accounts for.

SqlOperatorStore(sessions): each ``transaction()`` is a session of its own, committed when the
block ends normally and rolled back otherwise (the daemon, the console, the CLI).
SessionStore(session): transactions inside a session the caller already holds (flushed, never
committed: the caller commits), for a provisioning script or a test that makes several
changes at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import audit
from callcontrol.adapters.db.account_store import AccountRows
from callcontrol.adapters.db.admin import CellRows, ContactRows, NumberRows, PrisonerRows
from callcontrol.services.actors import AuditNote
from callcontrol.services.errors import Invalid


async def write_note(session: AsyncSession, note: AuditNote) -> None:
    """Append the audit entry in ``session``'s transaction (Invalid if it cannot be kept)."""
    try:
        await audit.record(
            session, actor=note.actor, role=note.role, action=note.action, target=note.target,
            reason=note.reason, detail=note.detail,
        )  # fmt: skip
    except audit.AuditError as e:
        raise Invalid(str(e)) from None


class SqlOperatorTx(CellRows, PrisonerRows, ContactRows, NumberRows, AccountRows):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def audit(self, note: AuditNote) -> None:
        await write_note(self.session, note)


class SqlOperatorStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlOperatorTx]:
        async with self.sessions.begin() as session:
            yield SqlOperatorTx(session)


class SessionStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlOperatorTx]:
        """In the caller's session, only flushed; after a refusal the caller rolls back (the
        checks come before the changes, but a flush may have been refused)."""
        yield SqlOperatorTx(self.session)
        await self.session.flush()
