"""The operator's rows on SQLAlchemy: cells, prisoners, contacts and their history, numbers for
everyone. Mixins of SqlOperatorTx (operator_store.py), which implements the transactions of
services/cells.py, prisoners.py, contacts.py and numbers.py: the rules live there, these only
read and write rows, as the services' views (never an ORM object outside this package).

Every method works in the transaction's session and only flushes; a unique constraint broken
by a concurrent writer is a Conflict.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db.tables import (
    Cell,
    Contact,
    ContactChange,
    GlobalNumber,
    HandsetPinState,
    Prisoner,
    utcnow,
)
from callcontrol.domain import model
from callcontrol.services.errors import Conflict, Invalid, NotFound
from callcontrol.services.views import (
    CellView,
    ContactChangeView,
    ContactView,
    GlobalNumberView,
    PendingContact,
    PrisonerView,
)


class AdminError(Invalid):
    """A refusal of pin_store.unlock_handset, whose message says why (an Invalid)."""


async def flush(session: AsyncSession, duplicate: str) -> None:
    """Flush; a unique constraint broken by a concurrent writer is a Conflict."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(duplicate) from None


def _cell_view(c: Cell, prisoners: tuple[str, ...] = (), locked_until: Any = None) -> CellView:
    return CellView(
        c.name, c.wing, c.sip_username, c.enabled, c.disabled_reason, prisoners, locked_until,
        c.created_at, c.updated_at,
    )  # fmt: skip


def _prisoner_view(p: Prisoner, cell: str | None) -> PrisonerView:
    return PrisonerView(
        p.prison_number, p.name, cell, p.active, p.suspended_reason, p.max_call_s,
        p.created_at, p.updated_at,
    )  # fmt: skip


def _contact_view(c: Contact, prison_number: str) -> ContactView:
    return ContactView(
        prison_number, c.number, c.kind, c.status, c.label, c.max_call_s, c.created_at,
        c.updated_at,
    )  # fmt: skip


class Rows:
    session: AsyncSession

    async def _cell_row(self, name: str) -> Cell:
        cell = await self.session.scalar(select(Cell).where(Cell.name == name))
        if cell is None:
            raise NotFound(f"no cell named {name!r}")
        return cell

    async def _prisoner_row(self, prison_number: str) -> Prisoner:
        query = select(Prisoner).where(Prisoner.prison_number == prison_number)
        prisoner = await self.session.scalar(query)
        if prisoner is None:
            raise NotFound(f"no prisoner with prison number {prison_number!r}")
        return prisoner


class CellRows(Rows):
    async def _cell_views(self, where: Any = None) -> list[CellView]:
        query = (
            select(Cell, HandsetPinState.locked_until)
            .outerjoin(HandsetPinState, HandsetPinState.cell_id == Cell.id)
            .order_by(Cell.name)
        )
        if where is not None:
            query = query.where(where)
        rows = list(await self.session.execute(query))
        ids = [c.id for c, _ in rows]
        inside: dict[int, list[str]] = defaultdict(list)
        if ids:
            people = await self.session.execute(
                select(Prisoner.cell_id, Prisoner.prison_number)
                .where(Prisoner.cell_id.in_(ids))
                .order_by(Prisoner.prison_number)
            )
            for cell_id, number in people:
                inside[cell_id].append(number)
        return [_cell_view(c, tuple(inside[c.id]), until) for c, until in rows]

    async def cells(self) -> list[CellView]:
        return await self._cell_views()

    async def cell(self, name: str) -> CellView | None:
        found = await self._cell_views(Cell.name == name)
        return found[0] if found else None

    async def cell_taken(self, name: str) -> bool:
        query = select(Cell.id).where((Cell.name == name) | (Cell.sip_username == name))
        return await self.session.scalar(query.limit(1)) is not None

    async def add_cell(self, name: str, wing: str, sip_realm: str, sip_md5_cred: str) -> CellView:
        cell = Cell(
            name=name, wing=wing, sip_username=name, sip_realm=sip_realm,
            sip_md5_cred=sip_md5_cred, enabled=True,
        )  # fmt: skip
        self.session.add(cell)
        await flush(self.session, f"cell {name} already exists")
        return _cell_view(cell)

    async def set_cell_credential(self, name: str, sip_realm: str, sip_md5_cred: str) -> None:
        cell = await self._cell_row(name)
        cell.sip_realm, cell.sip_md5_cred = sip_realm, sip_md5_cred
        await self.session.flush()

    async def cell_credential(self, name: str) -> tuple[str, str] | None:
        query = select(Cell.sip_realm, Cell.sip_md5_cred).where(Cell.name == name)
        row = (await self.session.execute(query)).first()
        return None if row is None else (row.sip_realm, row.sip_md5_cred)

    async def set_cell_enabled(self, name: str, enabled: bool, reason: str) -> None:
        cell = await self._cell_row(name)
        cell.enabled, cell.disabled_reason = enabled, reason
        await self.session.flush()


class PrisonerRows(Rows):
    async def _prisoner_views(self, where: Any = None) -> list[PrisonerView]:
        query = (
            select(Prisoner, Cell.name)
            .outerjoin(Cell, Prisoner.cell_id == Cell.id)
            .order_by(Prisoner.prison_number)
        )
        if where is not None:
            query = query.where(where)
        return [_prisoner_view(p, cell) for p, cell in await self.session.execute(query)]

    async def prisoners(self) -> list[PrisonerView]:
        return await self._prisoner_views()

    async def prisoner(self, prison_number: str) -> PrisonerView | None:
        found = await self._prisoner_views(Prisoner.prison_number == prison_number)
        return found[0] if found else None

    async def cellmates(self, cell: str) -> list[model.Prisoner]:
        rows = await self.session.scalars(
            select(Prisoner).join(Cell, Prisoner.cell_id == Cell.id).where(Cell.name == cell)
        )
        return [model.Prisoner(p.id, p.prison_number, p.name, p.pin_hash, cell, p.active)
                for p in rows]  # fmt: skip

    async def add_prisoner(
        self, prison_number: str, name: str, pin_hash: str, cell: str
    ) -> PrisonerView:
        the_cell = await self._cell_row(cell)
        prisoner = Prisoner(
            prison_number=prison_number, name=name, pin_hash=pin_hash, cell_id=the_cell.id,
            active=True,
        )  # fmt: skip
        self.session.add(prisoner)
        await flush(self.session, f"prisoner {prison_number} already exists")
        return _prisoner_view(prisoner, cell)

    async def update_prisoner(self, prison_number: str, **changes: Any) -> None:
        prisoner = await self._prisoner_row(prison_number)
        if "cell" in changes:
            prisoner.cell_id = (await self._cell_row(changes.pop("cell"))).id
        for key, value in changes.items():
            if key not in ("active", "suspended_reason", "pin_hash", "max_call_s"):
                raise ValueError(f"not a prisoner's field: {key}")
            setattr(prisoner, key, value)
        await self.session.flush()


class ContactRows(Rows):
    async def lock_list(self, prison_number: str) -> None:
        # A write that changes nothing: on PostgreSQL it locks the prisoner's row, on SQLite
        # it takes the database's write lock, until the end of the transaction (no ORM
        # update, which would touch updated_at).
        await self.session.execute(
            text("UPDATE prisoners SET prison_number = prison_number WHERE prison_number = :n"),
            {"n": prison_number},
        )

    async def contacts(self, prison_number: str) -> list[ContactView]:
        prisoner = await self._prisoner_row(prison_number)
        query = select(Contact).where(Contact.prisoner_id == prisoner.id)
        rows = await self.session.scalars(query.order_by(Contact.kind, Contact.number))
        return [_contact_view(c, prison_number) for c in rows]

    async def pending(self) -> list[PendingContact]:
        # Who asked, and when: the change that last made the contact pending.
        asked = (
            select(
                ContactChange.contact_id,
                func.max(ContactChange.id).label("change_id"),
            )
            .where(ContactChange.new_status == model.ContactStatus.PENDING.value)
            .group_by(ContactChange.contact_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(
                Contact,
                Prisoner.prison_number,
                Prisoner.name,
                Cell.name,
                ContactChange.changed_at,
                ContactChange.changed_by,
            )  # fmt: skip
            .join(Prisoner, Prisoner.id == Contact.prisoner_id)
            .outerjoin(Cell, Cell.id == Prisoner.cell_id)
            .outerjoin(asked, asked.c.contact_id == Contact.id)
            .outerjoin(ContactChange, ContactChange.id == asked.c.change_id)
            .where(Contact.status == model.ContactStatus.PENDING.value)
            .order_by(Contact.created_at, Contact.id)
        )
        return [
            PendingContact(
                number, name, cell, c.number, c.kind, c.label, at or c.created_at, by or ""
            )  # fmt: skip
            for c, number, name, cell, at, by in rows
        ]

    async def history(self, prison_number: str) -> list[ContactChangeView]:
        prisoner = await self._prisoner_row(prison_number)
        query = select(ContactChange).where(ContactChange.prisoner_id == prisoner.id)
        rows = await self.session.scalars(
            query.order_by(ContactChange.changed_at, ContactChange.id)
        )
        return [
            ContactChangeView(
                prison_number,
                c.number,
                c.action,
                c.old_status,
                c.new_status,
                c.changed_by,
                c.changed_at,
                c.note,
            )  # fmt: skip
            for c in rows
        ]

    async def save_contact(self, contact: ContactView, change: ContactChangeView) -> ContactView:
        prisoner = await self._prisoner_row(contact.prison_number)
        row = await self.session.scalar(
            select(Contact).where(
                Contact.prisoner_id == prisoner.id, Contact.number == contact.number
            )
        )
        if row is None:
            row = Contact(prisoner_id=prisoner.id, number=contact.number)
            self.session.add(row)
        row.kind, row.status, row.label = contact.kind, contact.status, contact.label
        row.max_call_s = contact.max_call_s
        await flush(self.session, f"{contact.number} is already on that prisoner's list")
        self.session.add(
            ContactChange(
                contact_id=row.id,
                prisoner_id=prisoner.id,
                number=row.number,
                action=change.action,
                old_status=change.old_status,
                new_status=change.new_status,
                changed_by=change.changed_by,
                changed_at=change.changed_at,
                note=change.note,
            )  # fmt: skip
        )
        await self.session.flush()
        return _contact_view(row, contact.prison_number)


def _global_view(g: GlobalNumber) -> GlobalNumberView:
    return GlobalNumberView(g.number, g.policy, g.privileged, g.label, g.changed_by, g.updated_at)


class NumberRows(Rows):
    async def global_numbers(self) -> list[GlobalNumberView]:
        query = select(GlobalNumber).order_by(GlobalNumber.policy, GlobalNumber.number)
        return [_global_view(g) for g in await self.session.scalars(query)]

    async def set_global_number(
        self, number: str, policy: str, privileged: bool, label: str, changed_by: str
    ) -> GlobalNumberView:
        query = select(GlobalNumber).where(GlobalNumber.number == number)
        entry = await self.session.scalar(query)
        if entry is None:
            entry = GlobalNumber(number=number, label=label)
            self.session.add(entry)
        elif label:
            entry.label = label
        entry.policy, entry.privileged = policy, privileged
        entry.changed_by, entry.updated_at = changed_by, utcnow()
        await flush(self.session, f"{number} was changed by someone else at the same time: retry")
        return _global_view(entry)
