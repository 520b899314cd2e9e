"""Prisoners' money as staff and prisoners see it and as admins change it: the balance
(balance, reserved, available pence), the statement, top-ups (idempotent by reference, never
over the balance cap), adjustments, and the tariffs.

Money is whole pence in an append-only ledger; the account's balance moves in the same
transaction as the entry it follows. ``lock_account`` locks the account row until the end of
the transaction, so the checks here see the balance no one else can change meanwhile. The
reservations and settlement of calls stay on the call path (adapters/db/ledger.py), under
the same rule (domain/money.posting_problem).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from callcontrol.domain.money import posting_problem, pounds
from callcontrol.domain.roles import Right
from callcontrol.domain.tariffs import Tariff
from callcontrol.services import checks
from callcontrol.services.actors import Actor, AuditNote, note, require
from callcontrol.services.errors import Conflict, Invalid, NotFound, Refused
from callcontrol.services.views import Entry, Money, PrisonerView, StatementLine, TopUp

MAX_REFERENCE = 190
MAX_KEY = 200
TOPUP, ADJUST, TARIFF = "topup", "adjust", "tariff"


class AccountTx(Protocol):
    async def prisoner(self, prison_number: str) -> PrisonerView | None: ...

    async def money(self, prison_number: str) -> Money:
        """(0, 0, 0) for an account never used."""
        ...

    async def lock_account(self, prison_number: str) -> Money:
        """Make sure the account exists and lock it until the end of the transaction; its
        money read after the lock."""
        ...

    async def entry(self, idempotency_key: str) -> Entry | None: ...

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
        """Append the entry and set the account's balance to ``balance_after``; Conflict when
        the key was written meanwhile."""
        ...

    async def ledger_lines(self, prison_number: str) -> list[StatementLine]:
        """The prisoner's entries, oldest first, each with its call's details."""
        ...

    async def free_calls(self, prison_number: str) -> list[StatementLine]:
        """Connected calls settled with no charge (no entry), by when they were settled."""
        ...

    async def tariffs(self) -> list[Tariff]: ...

    async def lock_tariff(self, destination_class: str) -> Tariff | None: ...

    async def set_tariff(self, tariff: Tariff, by: str) -> None: ...

    async def audit(self, note: AuditNote) -> None: ...


class AccountStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """An AccountTx."""
        ...


def topup_key(reference: str) -> str:
    """The idempotency key of a top-up with this reference (the default)."""
    return f"topup:{reference.strip()}"


def _utc(at: datetime | None) -> datetime:
    assert at is not None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def merge_statement(
    entries: list[StatementLine], calls: list[StatementLine]
) -> list[StatementLine]:
    """Entries and free calls merged by time (an entry before a free call at the same
    instant); a free call leaves the balance as the line before it left it."""
    lines: list[StatementLine] = []
    balance_now = 0
    i = j = 0
    while i < len(entries) or j < len(calls):
        take_entry = j >= len(calls) or (
            i < len(entries) and _utc(entries[i].at) <= _utc(calls[j].at)
        )
        if take_entry:
            line = entries[i]
            balance_now = line.balance_after
            i += 1
        else:
            line = replace(calls[j], balance_after=balance_now)
            j += 1
        lines.append(line)
    return lines


async def _prisoner(tx: AccountTx, prison_number: str) -> None:
    if await tx.prisoner(prison_number) is None:
        raise NotFound(f"no prisoner with prison number {prison_number!r}")


class AccountService:
    def __init__(self, store: AccountStore, *, max_balance: int | None = 5000) -> None:
        """``max_balance``: the balance cap in pence ([billing] max_balance_pence)."""
        self.store, self.max_balance = store, max_balance

    # --- reading ---

    async def balance(self, prison_number: str) -> Money:
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            return await tx.money(prison_number)

    async def statement(self, prison_number: str) -> list[StatementLine]:
        """The ledger, oldest first, with each charged call's details, and every connected
        call that cost nothing in its place by the time it was settled."""
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            entries = await tx.ledger_lines(prison_number)
            calls = await tx.free_calls(prison_number)
        return merge_statement(entries, calls)

    async def tariffs(self) -> list[Tariff]:
        async with self.store.transaction() as tx:
            return await tx.tariffs()

    # --- changing ---

    async def _post(
        self,
        tx: AccountTx,
        prison_number: str,
        kind: str,
        amount: int,
        key: str,
        reference: str,
        by: str,
        max_balance: int | None,
        what: str,
    ) -> tuple[Entry, bool]:
        """Append the entry (or find the same one already there: True)."""
        money = await tx.lock_account(prison_number)
        existing = await tx.entry(key)
        if existing is not None:
            same = (existing.prison_number, existing.kind, existing.amount_pence, existing.call_id)
            if same == (prison_number, kind, amount, None):
                return existing, True
            whose = "this" if existing.prison_number == prison_number else "another"
            raise Conflict(
                f"{what} was already used by entry {existing.id}, "
                f"a {existing.kind} of {existing.amount_pence}p for {whose} prisoner"
            )
        problem = posting_problem(money.balance, money.reserved, amount, max_balance)
        if problem is not None:
            raise Refused(problem)
        entry = await tx.append_entry(
            prison_number, kind, amount, money.balance + amount, key, reference, by
        )
        return entry, False

    async def topup(
        self,
        actor: Actor,
        prison_number: str,
        amount_pence: int,
        reference: str,
        idempotency_key: str | None = None,
    ) -> TopUp:
        """Credit ``amount_pence`` (> 0). The key defaults to ``topup:REFERENCE``: a retry
        (same key, prisoner and amount) returns the first entry and changes nothing; the same
        key with different data is refused; so is a balance over the cap afterwards."""
        require(actor, Right.ADMINISTER, f"top up the account of {prison_number}")
        amount = checks.whole(amount_pence, "a top-up", positive=True)
        reference = checks.text(reference, "the reference", MAX_REFERENCE, required=True)
        key = idempotency_key or topup_key(reference)
        by = checks.text(actor.name, "who", checks.MAX_BY, required=True)
        what = f"top-up reference {reference!r}" if idempotency_key is None else repr(key)
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            entry, again = await self._post(
                tx, prison_number, TOPUP, amount, key, reference, by, self.max_balance, what
            )
            if not again:
                detail = f"{amount}p ({pounds(amount)}), reference {reference}"
                await tx.audit(note(actor, TOPUP, f"account:{prison_number}", detail=detail))
            money = await tx.money(prison_number)
        return TopUp(entry, money, again)

    async def adjust(
        self,
        actor: Actor,
        prison_number: str,
        amount_pence: int,
        reference: str,
        idempotency_key: str,
        reason: Any = "",
    ) -> Entry:
        """A correction, signed (never 0), idempotent like ``topup``. Refused when it would take
        the balance below zero, below what calls in progress hold, or (a credit) over the cap."""
        require(actor, Right.ADMINISTER, f"adjust the account of {prison_number}")
        amount = checks.whole(amount_pence, "an adjustment", nonzero=True)
        reference = checks.text(reference, "the reference", MAX_REFERENCE, required=True)
        key = checks.text(idempotency_key, "the idempotency key", MAX_KEY, required=True)
        by = checks.text(actor.name, "who", checks.MAX_BY, required=True)
        why = checks.reason(reason)
        async with self.store.transaction() as tx:
            await _prisoner(tx, prison_number)
            entry, again = await self._post(
                tx, prison_number, "adjustment", amount, key, reference, by, self.max_balance,
                repr(key),
            )  # fmt: skip
            if not again:
                detail = f"{amount}p ({pounds(amount)}), reference {reference}"
                await tx.audit(note(actor, ADJUST, f"account:{prison_number}", why, detail))
            return entry

    async def set_tariff(
        self, actor: Actor, destination_class: str, rate: int, weekend_rate: int | None
    ) -> Tariff:
        """Change the rates (hundredths of a penny per minute) of an existing destination
        class; ``weekend_rate`` None: the weekday rate at weekends too."""
        require(actor, Right.ADMINISTER, f"change the tariff {destination_class}")
        checks.whole(rate, "the rate")
        if weekend_rate is not None:
            checks.whole(weekend_rate, "the weekend rate")
        try:
            tariff = Tariff(destination_class, rate, weekend_rate)
        except ValueError as e:
            raise Invalid(str(e)) from None
        by = checks.text(actor.name, "who", checks.MAX_BY, required=True)
        async with self.store.transaction() as tx:
            if await tx.lock_tariff(destination_class) is None:
                known = ", ".join(t.destination_class for t in await tx.tariffs())
                raise NotFound(f"no destination class {destination_class!r} (known: {known})")
            await tx.set_tariff(tariff, by)
            detail = f"rate {rate}, weekend {weekend_rate if weekend_rate is not None else '-'}"
            await tx.audit(note(actor, TARIFF, f"tariff:{destination_class}", detail=detail))
        return tariff
