"""Operational figures from the database, for the metrics: a few aggregate queries, no rows.

Each is an indexed count or a sum; the ledger's sums read the whole (append-only) ledger, which
is why the metrics cache these figures (``[metrics] db_cache_s``) rather than ask per scrape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import Account, LedgerEntry, MissingRecording, Recording


@dataclass(frozen=True)
class Figures:
    calls_live: int = 0  # allowed calls whose end has not been seen
    unsettled: int = 0  # calls that ended and are not settled yet
    oldest_unsettled_end: datetime | None = None
    recordings_pending: int = 0  # settled, accepted, recordable: neither audio nor "missing"
    recordings_missing: int = 0  # marked missing and not found since
    ledger_pence: dict[str, int] = field(default_factory=dict)  # sum by entry kind
    ledger_entries: dict[str, int] = field(default_factory=dict)  # count by entry kind
    balance_pence: int = 0  # all accounts together
    reserved_pence: int = 0


class SqlFigures:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def figures(self) -> Figures:
        async with self.sessions() as s:
            live = await s.scalar(select(func.count()).where(m.Call.ended_at.is_(None)))
            unsettled, oldest = (
                await s.execute(
                    select(func.count(), func.min(m.Call.ended_at)).where(
                        m.Call.ended_at.is_not(None), m.Call.settled_at.is_(None)
                    )
                )
            ).one()
            pending = await s.scalar(
                select(func.count())
                .select_from(m.Call)
                .outerjoin(Recording, Recording.call_id == m.Call.id)
                .outerjoin(MissingRecording, MissingRecording.call_id == m.Call.id)
                .where(
                    m.Call.settled_at.is_not(None),
                    m.Call.accepted.is_(True),
                    m.Call.privileged.is_(False),
                    Recording.id.is_(None),
                    MissingRecording.id.is_(None),
                )
            )
            missing = await s.scalar(
                select(func.count()).where(MissingRecording.resolved_at.is_(None))
            )
            ledger = (
                await s.execute(
                    select(
                        LedgerEntry.kind,
                        func.count(),
                        func.coalesce(func.sum(LedgerEntry.amount_pence), 0),
                    ).group_by(LedgerEntry.kind)
                )
            ).all()
            balance, reserved = (
                await s.execute(
                    select(
                        func.coalesce(func.sum(Account.balance_pence), 0),
                        func.coalesce(func.sum(Account.reserved_pence), 0),
                    )
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite's func.min is not typed
            oldest = m.UtcDateTime().process_result_value(oldest, None)
        return Figures(
            calls_live=int(live or 0),
            unsettled=int(unsettled or 0),
            oldest_unsettled_end=oldest,
            recordings_pending=int(pending or 0),
            recordings_missing=int(missing or 0),
            ledger_pence={kind: int(total) for kind, _, total in ledger},
            ledger_entries={kind: int(n) for kind, n, _ in ledger},
            balance_pence=int(balance),
            reserved_pence=int(reserved),
        )
