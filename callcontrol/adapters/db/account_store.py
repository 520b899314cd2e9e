"""Money's rows for services/accounts.py (a mixin of SqlOperatorTx): accounts locked with the
ledger's own primitive (ledger.lock_account: the same lock as the call path's), entries
appended, statements and tariffs read, tariffs written. No rule here: the balance cap, the
idempotency of top-ups and what an entry may do are the service's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db.admin import Rows
from callcontrol.adapters.db.tables import Call, LedgerEntry, Prisoner, TariffRow, utcnow
from callcontrol.domain.tariffs import Tariff
from callcontrol.services.errors import Conflict
from callcontrol.services.views import Entry, Money, StatementLine


def _entry(e: LedgerEntry, prison_number: str) -> Entry:
    return Entry(
        e.id, prison_number, e.kind, e.amount_pence, e.balance_after, e.idempotency_key,
        e.reference, e.call_id, e.created_at, e.created_by,
    )  # fmt: skip


class AccountRows(Rows):
    async def _pid(self, prison_number: str) -> int:
        return (await self._prisoner_row(prison_number)).id

    async def money(self, prison_number: str) -> Money:
        b = await ledger.balance(self.session, await self._pid(prison_number))
        return Money(b.balance, b.reserved, b.available)

    async def lock_account(self, prison_number: str) -> Money:
        balance, reserved = await ledger.lock_account(self.session, await self._pid(prison_number))
        return Money(balance, reserved, balance - reserved)

    async def entry(self, idempotency_key: str) -> Entry | None:
        row = (
            await self.session.execute(
                select(LedgerEntry, Prisoner.prison_number)
                .join(Prisoner, Prisoner.id == LedgerEntry.prisoner_id)
                .where(LedgerEntry.idempotency_key == idempotency_key)
            )
        ).first()
        return None if row is None else _entry(row[0], row[1])

    async def append_entry(
        self,
        prison_number: str,
        kind: str,
        amount: int,
        balance_after: int,
        idempotency_key: str,
        reference: str,
        by: str,
    ) -> Entry:
        pid = await self._pid(prison_number)
        entry = LedgerEntry(
            prisoner_id=pid, kind=kind, amount_pence=amount, balance_after=balance_after,
            idempotency_key=idempotency_key, reference=reference, call_id=None,
            created_at=utcnow(), created_by=by,
        )  # fmt: skip
        self.session.add(entry)
        try:
            await self.session.flush()
        except IntegrityError:  # the same key written meanwhile, for another account
            raise Conflict(f"{idempotency_key!r} was already used") from None
        await ledger.set_account(self.session, pid, balance_pence=balance_after)
        return _entry(entry, prison_number)

    async def ledger_lines(self, prison_number: str) -> list[StatementLine]:
        rows = await self.session.execute(
            select(LedgerEntry, Call.number, Call.started_at, Call.talk_seconds, Call.charge_pence)
            .outerjoin(Call, LedgerEntry.call_id == Call.id)
            .where(LedgerEntry.prisoner_id == await self._pid(prison_number))
            .order_by(LedgerEntry.id)
        )
        return [
            StatementLine(
                _entry(e, prison_number),
                number,
                started,
                talk,
                charge,
                e.call_id,
                e.created_at,
                e.balance_after,
            )  # fmt: skip
            for e, number, started, talk, charge in rows
        ]

    async def free_calls(self, prison_number: str) -> list[StatementLine]:
        rows = await self.session.execute(
            select(Call.id, Call.number, Call.started_at, Call.talk_seconds, Call.settled_at)
            .where(
                Call.prisoner_id == await self._pid(prison_number),
                Call.talk_seconds.is_not(None),
                Call.charge_pence == 0,
                Call.settled_at.is_not(None),
            )
            .order_by(Call.settled_at, Call.id)
        )
        return [
            StatementLine(None, number, started, talk, 0, call_id, settled)
            for call_id, number, started, talk, settled in rows
        ]

    async def tariffs(self) -> list[Tariff]:
        return await ledger.list_tariffs(self.session)

    async def lock_tariff(self, destination_class: str) -> Tariff | None:
        row = await self.session.get(TariffRow, destination_class, with_for_update=True)
        return None if row is None else Tariff(row.destination_class, row.rate, row.weekend_rate)

    async def set_tariff(self, tariff: Tariff, by: str) -> None:
        row = await self.session.get_one(TariffRow, tariff.destination_class)
        row.rate, row.weekend_rate = tariff.rate, tariff.weekend_rate
        row.updated_at, row.updated_by = utcnow(), by
        await self.session.flush()
