"""The PIN lockout records on SQLAlchemy: the decision's reads and writes (a mixin of
SqlCallStore), and staff's side: the alerts and `cell unlock` (also used by the API).

A lockout, the handset's new state and the audit entry are written in one transaction; so are
an unlock, its state and its audit entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from callcontrol.adapters.db import audit
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.admin import AdminError
from callcontrol.adapters.db.tables import HandsetPinState, PinLockout
from callcontrol.domain.model import Prisoner
from callcontrol.domain.pin_lockout import LockState
from callcontrol.services.authorise import PinFacts
from callcontrol.services.pin_guard import HandsetLockout
from callcontrol.services.supervise import Invalid, NotFound

SYSTEM_ACTOR = "callcontrol"
LOCKOUT_ACTION = "pin_lockout"
UNLOCK_ACTION = "unlock"


def _state(row: HandsetPinState | None) -> LockState:
    if row is None:
        return LockState()
    return LockState(row.locked_until, row.level, row.counting_since, row.budget_since)


_cells, _states, _prisoners = m.Cell.__table__, HandsetPinState.__table__, m.Prisoner.__table__
# One PIN try's read (built once): the handset's lockout state and the prisoners of its cell, a
# row a prisoner (or one row of NULLs for an empty cell; none for an unknown cell).
PIN_FACTS = (
    select(
        _states.c.locked_until,
        _states.c.level,
        _states.c.counting_since,
        _states.c.budget_since,
        _prisoners.c.id,
        _prisoners.c.prison_number,
        _prisoners.c.name,
        _prisoners.c.pin_hash,
        _prisoners.c.active,
    )
    .select_from(
        _cells.outerjoin(_states, _states.c.cell_id == _cells.c.id).outerjoin(
            _prisoners, _prisoners.c.cell_id == _cells.c.id
        )
    )
    .where(_cells.c.name == bindparam("cell"))
    .order_by(_prisoners.c.id)
)


async def pin_facts(conn: AsyncConnection, cell: str) -> PinFacts:
    """The handset's lockout state and the cell's prisoners, in one statement."""
    rows = (await conn.execute(PIN_FACTS, {"cell": cell})).all()
    first = rows[0] if rows else None
    state = (
        LockState()
        if first is None or first.level is None
        else LockState(first.locked_until, first.level, first.counting_since, first.budget_since)
    )
    prisoners = [
        Prisoner(
            id=r.id,
            prison_number=r.prison_number,
            name=r.name,
            pin_hash=r.pin_hash,
            cell=cell,
            active=bool(r.active),
        )
        for r in rows
        if r.id is not None
    ]
    return PinFacts(state, prisoners)


async def _cell_id(s: AsyncSession, cell: str) -> int | None:
    return await s.scalar(select(m.Cell.id).where(m.Cell.name == cell))


async def _state_row(s: AsyncSession, cell_id: int) -> HandsetPinState:
    """The handset's state row, locked for this transaction (made if it has none)."""
    row = await s.scalar(
        select(HandsetPinState).where(HandsetPinState.cell_id == cell_id).with_for_update()
    )
    if row is None:
        row = HandsetPinState(cell_id=cell_id, level=0)
        s.add(row)
    return row


class SqlPinStore:
    """The PIN parts of services' CallStore (the lockout's writes, and its reads for PinGuard);
    a PIN try's own read is ``pin_facts``. Needs ``sessions`` (SqlCallStore)."""

    sessions: async_sessionmaker[AsyncSession]

    async def pin_lock_state(self, cell: str) -> LockState:
        async with self.sessions() as s:
            row = await s.scalar(
                select(HandsetPinState)
                .join(m.Cell, m.Cell.id == HandsetPinState.cell_id)
                .where(m.Cell.name == cell)
            )
            return _state(row)

    async def rehash_pin(self, prisoner_id: int, old_hash: str, new_hash: str) -> bool:
        async with self.sessions.begin() as s:
            result = await s.execute(
                update(m.Prisoner)
                .where(m.Prisoner.id == prisoner_id, m.Prisoner.pin_hash == old_hash)
                .values(pin_hash=new_hash)
            )
            return bool(result.rowcount)

    async def record_pin_failure(self, cell: str, at: datetime) -> None:
        async with self.sessions.begin() as s:
            cell_id = await _cell_id(s, cell)
            if cell_id is not None:
                s.add(m.PinFailure(prisoner_id=None, cell_id=cell_id, at=at))

    async def pin_failures_since(self, cell: str, since: datetime) -> Sequence[datetime]:
        async with self.sessions() as s:
            rows = await s.scalars(
                select(m.PinFailure.at)
                .join(m.Cell, m.Cell.id == m.PinFailure.cell_id)
                .where(m.Cell.name == cell, m.PinFailure.at >= since)
                .order_by(m.PinFailure.at)
            )
            return list(rows)

    async def lock_handset(self, lockout: HandsetLockout) -> None:
        new = lockout.state
        assert new.locked_until is not None
        async with self.sessions.begin() as s:
            cell_id = await _cell_id(s, lockout.cell)
            if cell_id is None:
                return
            row = await _state_row(s, cell_id)
            row.locked_until, row.level = new.locked_until, new.level
            row.counting_since, row.budget_since = new.counting_since, new.budget_since
            s.add(
                PinLockout(
                    cell_id=cell_id,
                    started_at=lockout.at,
                    until=new.locked_until,
                    level=new.level,
                    failures=lockout.failures,
                )
            )
            await audit.record(
                s,
                actor=SYSTEM_ACTOR,
                role="system",
                action=LOCKOUT_ACTION,
                target=f"cell:{lockout.cell}",
                reason="wrong PINs keyed on the handset",
                detail=(
                    f"locked until {new.locked_until.isoformat(timespec='seconds')}: "
                    f"{lockout.failures} wrong PINs in the last day; lockout {new.level} "
                    "since the last successful call"
                ),
            )

    async def reset_pin_escalation(self, cell: str, at: datetime) -> None:
        async with self.sessions.begin() as s:
            await s.execute(
                update(HandsetPinState)
                .where(
                    HandsetPinState.cell_id
                    == select(m.Cell.id).where(m.Cell.name == cell).scalar_subquery()
                )
                .values(level=0, updated_at=at)
            )


# --- staff: alerts and unlock ------------------------------------------------------------------


@dataclass(frozen=True)
class Unlocked:
    cell: str
    was_locked: bool
    locked_until: datetime | None  # the lockout it ended, if any


async def unlock_handset(
    s: AsyncSession, cell: str, *, actor: str, role: str, reason: str, now: datetime
) -> Unlocked:
    """End the handset's lockout, if any, and forget its wrong PINs so far (the escalation
    stays until a successful call); audited in the caller's transaction."""
    reason = reason.strip()
    if not reason:
        raise AdminError("a reason is needed to unlock a handset (--reason): it is audited")
    cell_id = await _cell_id(s, cell)
    if cell_id is None:
        raise AdminError(f"no cell {cell!r}")
    row = await _state_row(s, cell_id)
    until = row.locked_until if row.locked_until is not None and row.locked_until > now else None
    row.locked_until, row.counting_since, row.budget_since = None, now, now
    row.updated_at = now
    await s.execute(
        update(PinLockout)
        .where(
            PinLockout.cell_id == cell_id,
            PinLockout.until > now,
            PinLockout.unlocked_at.is_(None),
        )
        .values(unlocked_at=now, unlocked_by=actor[:100], unlock_reason=reason)
    )
    detail = (
        f"lockout until {until.isoformat(timespec='seconds')} ended"
        if until
        else "no lockout in force; wrong PINs so far forgotten"
    )
    try:
        await audit.record(
            s,
            actor=actor,
            role=role,
            action=UNLOCK_ACTION,
            target=f"cell:{cell}",
            reason=reason,
            detail=detail,
        )
    except audit.AuditError as e:
        raise AdminError(str(e)) from None
    return Unlocked(cell, until is not None, until)


def _status(row: Any, now: datetime) -> str:
    if row.unlocked_at is not None:
        return "unlocked"
    return "in force" if row.until > now else "over"


async def alerts(s: AsyncSession, *, now: datetime, days: float = 7) -> list[dict[str, Any]]:
    """The PIN lockouts started in the last ``days`` days and those still in force, newest
    first, as plain values."""
    rows = await s.execute(
        select(PinLockout, m.Cell.name, m.Cell.wing)
        .join(m.Cell, m.Cell.id == PinLockout.cell_id)
        .where((PinLockout.started_at >= now - timedelta(days=days)) | (PinLockout.until > now))
        .order_by(PinLockout.started_at.desc(), PinLockout.id.desc())
    )
    out = []
    for lockout, cell, wing in rows:
        out.append(
            {
                "kind": "pin_lockout",
                "cell": cell,
                "wing": wing,
                "started_at": lockout.started_at,
                "until": lockout.until,
                "level": lockout.level,
                "failures": lockout.failures,
                "status": _status(lockout, now),
                "unlocked_at": lockout.unlocked_at,
                "unlocked_by": lockout.unlocked_by,
                "unlock_reason": lockout.unlock_reason,
            }
        )
    return out


class SqlPinAlerts:
    """Alerts and unlock for the API (adapters/http/alerts.py's port), one transaction each."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def alerts(self, now: datetime, days: float) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            return await alerts(s, now=now, days=days)

    async def unlock(
        self, cell: str, *, actor: str, role: str, reason: str, now: datetime
    ) -> Unlocked:
        """As `cell unlock`; a refusal is the API's 404 (no such cell) or 400."""
        try:
            async with self.sessions.begin() as s:
                return await unlock_handset(s, cell, actor=actor, role=role, reason=reason, now=now)
        except AdminError as e:
            kind = NotFound if str(e).startswith("no cell") else Invalid
            raise kind(str(e)) from None


async def pin_hashes(session: AsyncSession) -> list[str]:
    """Every prisoner's stored PIN hash (for `pin-secret status`: which keys are still used)."""
    return list(await session.scalars(select(m.Prisoner.pin_hash)))
