"""An in-memory operator's store for the services' tests: the same transaction methods as
adapters/db/operator_store.SqlOperatorTx, on dicts. A transaction that raises leaves
everything as it was (a copy is put back), as a rolled-back database transaction would."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from callcontrol.domain import model
from callcontrol.domain.tariffs import Tariff
from callcontrol.services.actors import AuditNote
from callcontrol.services.errors import Conflict
from callcontrol.services.views import (
    CellView,
    ContactChangeView,
    ContactView,
    Entry,
    GlobalNumberView,
    Money,
    PendingContact,
    PrisonerView,
    StatementLine,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class _Prisoner:
    view: PrisonerView
    pin_hash: str


@dataclass
class State:
    cells: dict[str, CellView] = field(default_factory=dict)
    creds: dict[str, tuple[str, str]] = field(default_factory=dict)
    prisoners: dict[str, _Prisoner] = field(default_factory=dict)
    contacts: dict[tuple[str, str], ContactView] = field(default_factory=dict)
    history: list[ContactChangeView] = field(default_factory=list)
    numbers: dict[str, GlobalNumberView] = field(default_factory=dict)
    money: dict[str, tuple[int, int]] = field(default_factory=dict)  # balance, reserved
    entries: list[Entry] = field(default_factory=list)
    free_calls: list[StatementLine] = field(default_factory=list)
    tariffs: dict[str, Tariff] = field(default_factory=dict)
    audit: list[AuditNote] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)  # lists locked, in order


class FakeTx:
    def __init__(self, state: State) -> None:
        self.s = state

    # cells
    async def cells(self) -> list[CellView]:
        return [await self._cell(n) for n in sorted(self.s.cells)]

    async def _cell(self, name: str) -> CellView:
        inside = sorted(n for n, p in self.s.prisoners.items() if p.view.cell == name)
        return replace(self.s.cells[name], prisoners=tuple(inside))

    async def cell(self, name: str) -> CellView | None:
        return await self._cell(name) if name in self.s.cells else None

    async def cell_taken(self, name: str) -> bool:
        return any(c.name == name or c.sip_username == name for c in self.s.cells.values())

    async def add_cell(self, name: str, wing: str, sip_realm: str, sip_md5_cred: str) -> CellView:
        self.s.cells[name] = CellView(name, wing, name, True, "", created_at=T0, updated_at=T0)
        self.s.creds[name] = (sip_realm, sip_md5_cred)
        return self.s.cells[name]

    async def set_cell_credential(self, name: str, sip_realm: str, sip_md5_cred: str) -> None:
        self.s.creds[name] = (sip_realm, sip_md5_cred)

    async def cell_credential(self, name: str) -> tuple[str, str] | None:
        return self.s.creds.get(name)

    async def set_cell_enabled(self, name: str, enabled: bool, reason: str) -> None:
        self.s.cells[name] = replace(self.s.cells[name], enabled=enabled, disabled_reason=reason)

    # prisoners
    async def prisoners(self) -> list[PrisonerView]:
        return [self.s.prisoners[n].view for n in sorted(self.s.prisoners)]

    async def prisoner(self, prison_number: str) -> PrisonerView | None:
        p = self.s.prisoners.get(prison_number)
        return None if p is None else p.view

    async def cellmates(self, cell: str) -> list[model.Prisoner]:
        return [
            model.Prisoner(i, n, p.view.name, p.pin_hash, cell, p.view.active)
            for i, (n, p) in enumerate(sorted(self.s.prisoners.items()))
            if p.view.cell == cell
        ]

    async def add_prisoner(
        self, prison_number: str, name: str, pin_hash: str, cell: str
    ) -> PrisonerView:
        view = PrisonerView(prison_number, name, cell, True, "", None, T0, T0)
        self.s.prisoners[prison_number] = _Prisoner(view, pin_hash)
        return view

    async def update_prisoner(self, prison_number: str, **changes: Any) -> None:
        p = self.s.prisoners[prison_number]
        if "pin_hash" in changes:
            p.pin_hash = changes.pop("pin_hash")
        p.view = replace(p.view, **changes)

    def pin_hash(self, prison_number: str) -> str:
        return self.s.prisoners[prison_number].pin_hash

    # contacts
    async def lock_list(self, prison_number: str) -> None:
        self.s.locks.append(prison_number)

    async def contacts(self, prison_number: str) -> list[ContactView]:
        mine = [c for (n, _), c in self.s.contacts.items() if n == prison_number]
        return sorted(mine, key=lambda c: (c.kind, c.number))

    async def pending(self) -> list[PendingContact]:
        out = []
        for c in self.s.contacts.values():
            if c.status != "pending":
                continue
            asked = [
                h
                for h in self.s.history
                if (h.prison_number, h.number, h.new_status)
                == (c.prison_number, c.number, "pending")
            ][-1]
            p = self.s.prisoners[c.prison_number].view
            out.append(
                PendingContact(
                    c.prison_number,
                    p.name,
                    p.cell,
                    c.number,
                    c.kind,
                    c.label,
                    asked.changed_at,
                    asked.changed_by,
                )  # fmt: skip
            )
        return out

    async def history(self, prison_number: str) -> list[ContactChangeView]:
        return [h for h in self.s.history if h.prison_number == prison_number]

    async def save_contact(self, contact: ContactView, change: ContactChangeView) -> ContactView:
        self.s.contacts[(contact.prison_number, contact.number)] = contact
        self.s.history.append(change)
        return contact

    # numbers
    async def global_numbers(self) -> list[GlobalNumberView]:
        return sorted(self.s.numbers.values(), key=lambda g: (g.policy, g.number))

    async def set_global_number(
        self, number: str, policy: str, privileged: bool, label: str, changed_by: str
    ) -> GlobalNumberView:
        old = self.s.numbers.get(number)
        label = label or (old.label if old else "")
        self.s.numbers[number] = GlobalNumberView(number, policy, privileged, label, changed_by)
        return self.s.numbers[number]

    # money
    async def money(self, prison_number: str) -> Money:
        balance, reserved = self.s.money.get(prison_number, (0, 0))
        return Money(balance, reserved, balance - reserved)

    async def lock_account(self, prison_number: str) -> Money:
        self.s.money.setdefault(prison_number, (0, 0))
        return await self.money(prison_number)

    async def entry(self, idempotency_key: str) -> Entry | None:
        return next((e for e in self.s.entries if e.idempotency_key == idempotency_key), None)

    async def append_entry(
        self, prison_number: str, kind: str, amount: int, balance_after: int,
        idempotency_key: str, reference: str, by: str,
    ) -> Entry:  # fmt: skip
        if await self.entry(idempotency_key) is not None:
            raise Conflict(f"{idempotency_key!r} was already used")
        entry = Entry(
            len(self.s.entries) + 1, prison_number, kind, amount, balance_after,
            idempotency_key, reference, None, T0, by,
        )  # fmt: skip
        self.s.entries.append(entry)
        self.s.money[prison_number] = (balance_after, self.s.money[prison_number][1])
        return entry

    async def ledger_lines(self, prison_number: str) -> list[StatementLine]:
        return [
            StatementLine(e, None, None, None, None, e.call_id, e.created_at, e.balance_after)
            for e in self.s.entries
            if e.prison_number == prison_number
        ]

    async def free_calls(self, prison_number: str) -> list[StatementLine]:
        return list(self.s.free_calls)

    async def tariffs(self) -> list[Tariff]:
        return [self.s.tariffs[k] for k in sorted(self.s.tariffs)]

    async def lock_tariff(self, destination_class: str) -> Tariff | None:
        return self.s.tariffs.get(destination_class)

    async def set_tariff(self, tariff: Tariff, by: str) -> None:
        self.s.tariffs[tariff.destination_class] = tariff

    async def audit(self, note: AuditNote) -> None:
        self.s.audit.append(note)


class FakeOperatorStore:
    def __init__(self) -> None:
        self.state = State()
        self.transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTx]:
        saved = copy.deepcopy(self.state)
        self.transactions += 1
        try:
            yield FakeTx(self.state)
        except BaseException:
            self.state.__dict__.update(saved.__dict__)
            raise

    @property
    def tx(self) -> FakeTx:
        """For a test's own look at the state (outside any transaction)."""
        return FakeTx(self.state)
