"""The kiosk's records on SQLAlchemy (implements services/kiosk_ports.py's KioskStore).

Every read is of one prisoner, whom the service passes from the session: no query here takes a
prisoner from anywhere else. A request for a contact goes through the operators' own
add_contact (the same checks and limits, pending in staff's queue); the PIN change is a
conditional update with its audit entry, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import admin, audit, ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.history_store import SqlHistoryReader
from callcontrol.domain.model import Prisoner, Reason
from callcontrol.services.call_history import HistoryFilter, HistoryRow
from callcontrol.services.kiosk_ports import (
    CallItem,
    ContactItem,
    KioskRefused,
    Money,
    StatementItem,
)

PRISONER_ROLE = "prisoner"
PIN_CHANGE_ACTION = "pin_change"

# The refusals a prisoner sees in their history, in their words.
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
ENTRY_WORDS = {"topup": "Top-up", "refund": "Refund", "adjustment": "Adjustment"}


def _call_item(row: HistoryRow) -> CallItem:
    if row.decision != "allow":
        outcome, reason = "refused", REASONS.get(Reason(row.reason), row.reason.replace("_", " "))
    elif row.answered_at is not None:
        outcome, reason = "connected", ""
    else:
        outcome, reason = "not connected", ""
    return CallItem(
        at=row.decided_at,
        number=row.number or row.dialled,
        outcome=outcome,
        reason=reason,
        talk_seconds=row.talk_seconds,
        charge_pence=row.charge_pence,
    )


def _statement_item(line: ledger.StatementLine) -> StatementItem:
    if line.entry is None:  # a connected call that cost nothing
        what, amount = f"Call to {line.number}", 0
    elif line.entry.kind == "charge":
        what, amount = f"Call to {line.number}", line.entry.amount_pence
    else:
        what, amount = ENTRY_WORDS.get(line.entry.kind, line.entry.kind), line.entry.amount_pence
    return StatementItem(line.at, what, amount, line.balance_after, line.talk_seconds)


class SqlKioskStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        region: str,
        max_social: int,
        max_legal: int,
    ) -> None:
        self.sessions = sessions
        self.region = region
        self.max_social = max_social
        self.max_legal = max_legal
        self.history = SqlHistoryReader(sessions)

    async def _one(self, where: object) -> Prisoner | None:
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(m.Prisoner, m.Cell.name)
                    .outerjoin(m.Cell, m.Cell.id == m.Prisoner.cell_id)
                    .where(where)  # type: ignore[arg-type]
                )
            ).first()
        if row is None:
            return None
        p, cell = row
        return Prisoner(p.id, p.prison_number, p.name, p.pin_hash, cell, p.active)

    async def account(self, prison_number: str) -> Prisoner | None:
        return await self._one(m.Prisoner.prison_number == prison_number)

    async def cellmates(self, prisoner: Prisoner) -> Sequence[Prisoner]:
        async with self.sessions() as s:
            rows = await s.scalars(
                select(m.Prisoner)
                .join(m.Cell, m.Cell.id == m.Prisoner.cell_id)
                .where(m.Cell.name == prisoner.cell, m.Prisoner.id != prisoner.id)
            )
            return [
                Prisoner(p.id, p.prison_number, p.name, p.pin_hash, prisoner.cell, p.active)
                for p in rows
            ]

    async def change_pin(self, prisoner: Prisoner, new_hash: str, at: datetime) -> bool:
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(m.Prisoner)
                .where(m.Prisoner.id == prisoner.id, m.Prisoner.pin_hash == prisoner.pin_hash)
                .values(pin_hash=new_hash)
            )
            if not result.rowcount:
                return False
            await audit.record(
                s,
                actor=prisoner.prison_number,
                role=PRISONER_ROLE,
                action=PIN_CHANGE_ACTION,
                target=f"prisoner:{prisoner.prison_number}",
                reason="changed by the prisoner at the kiosk",
                detail=f"at {at.isoformat(timespec='seconds')}",
            )
            return True

    async def money(self, prisoner: Prisoner) -> Money:
        async with self.sessions() as s:
            b = await ledger.balance(s, prisoner.id)
        return Money(b.balance, b.reserved, b.available)

    async def statement(self, prisoner: Prisoner) -> Sequence[StatementItem]:
        async with self.sessions() as s:
            lines = await ledger.statement(s, prisoner.prison_number)
        return [_statement_item(line) for line in reversed(lines)]

    async def calls(self, prisoner: Prisoner, limit: int) -> Sequence[CallItem]:
        rows = await self.history.history(
            HistoryFilter(prisoner=prisoner.prison_number, limit=limit)
        )
        return [_call_item(r) for r in rows]

    async def contacts(self, prisoner: Prisoner) -> Sequence[ContactItem]:
        async with self.sessions() as s:
            rows = await admin.list_contacts(s, prisoner.prison_number)
            return [ContactItem(c.number, c.kind, c.status, c.label) for c in rows]

    async def request_contact(
        self, prisoner: Prisoner, number: str, kind: str, label: str
    ) -> ContactItem:
        try:
            async with self.sessions.begin() as s:
                c = await admin.add_contact(
                    s,
                    prisoner.prison_number,
                    number,
                    kind,
                    label,
                    changed_by=f"{prisoner.prison_number} (kiosk)",
                    region=self.region,
                    max_social=self.max_social,
                    max_legal=self.max_legal,
                )
                return ContactItem(c.number, c.kind, c.status, c.label)
        except admin.AdminError as e:
            raise KioskRefused(str(e)) from None
