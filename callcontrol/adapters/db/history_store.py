"""Call history from the database (implements services/call_history.py's HistoryReader).

One statement: the decisions, newest first, each joined to its call (allowed decisions have
one), its cell, its prisoner and its recording. Paging is by decision id (``before``), not by
offset, so the thousandth page costs what the first does. The indexes that keep each filter
fast on millions of decisions are migration 0010's (and ``at`` and ``prisoner_id``'s own).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import Recording
from callcontrol.services.call_history import HistoryFilter, HistoryRow

D, C = m.CallDecision, m.Call


def _outcome(query: Select, outcome: str) -> Select:  # type: ignore[type-arg]
    if outcome == "allowed":
        return query.where(D.outcome == "allow")
    if outcome == "refused":
        return query.where(D.outcome == "refuse")
    if outcome == "service":  # a service code answered (the balance enquiry): no call
        return query.where(D.outcome == "service")
    if outcome == "connected":
        return query.where(C.accepted.is_(True))
    if outcome == "not_connected":  # allowed, ended, never accepted by the called party
        never = or_(C.accepted.is_(None), C.accepted.is_(False))
        return query.where(C.ended_at.is_not(None), never)
    if outcome == "live":
        return query.where(C.id.is_not(None), C.ended_at.is_(None))
    raise ValueError(f"unknown outcome {outcome!r}")


def statement(f: HistoryFilter) -> Select:  # type: ignore[type-arg]
    """The query for a filter (also used by the tests to look at its plan)."""
    query = (
        select(
            D.id,
            C.id,
            D.at,
            D.handset,
            m.Cell.name,
            m.Prisoner.prison_number,
            D.dialled,
            D.number,
            D.outcome,
            D.reason,
            D.privileged,
            C.answered_at,
            C.ended_at,
            C.talk_seconds,
            C.charge_pence,
            Recording.id,
        )  # fmt: skip
        .select_from(D)
        .outerjoin(C, C.decision_id == D.id)
        .outerjoin(m.Cell, m.Cell.id == D.cell_id)
        .outerjoin(m.Prisoner, m.Prisoner.id == D.prisoner_id)
        .outerjoin(Recording, Recording.call_id == C.id)
    )
    if f.prisoner is not None:
        query = query.where(
            D.prisoner_id
            == select(m.Prisoner.id).where(m.Prisoner.prison_number == f.prisoner).scalar_subquery()
        )
    if f.cell is not None:
        query = query.where(
            D.cell_id == select(m.Cell.id).where(m.Cell.name == f.cell).scalar_subquery()
        )
    if f.number is not None or f.dialled is not None:
        query = query.where(
            or_(
                *([D.number == f.number] if f.number is not None else []),
                *([D.dialled == f.dialled] if f.dialled else []),
            )
        )
    if f.since is not None:
        query = query.where(D.at >= f.since)
    if f.until is not None:
        query = query.where(D.at < f.until)
    if f.outcome is not None:
        query = _outcome(query, f.outcome)
    if f.reason is not None:
        query = query.where(D.reason == f.reason)
    if f.before is not None:
        query = query.where(D.id < f.before)
    return query.order_by(D.id.desc()).limit(f.limit)


class SqlHistoryReader:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def history(self, query: HistoryFilter) -> Sequence[HistoryRow]:
        async with self.sessions() as s:
            rows = (await s.execute(statement(query))).all()
        return [HistoryRow(*r) for r in rows]
