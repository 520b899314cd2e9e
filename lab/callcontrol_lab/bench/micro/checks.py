"""What the benchmark checks: every call allowed as the dialplan would bridge it, every call
settled, and at the end the database: every call allowed, settled and charged exactly once, no
money still reserved, every account equal to its ledger. Anything else: BrokenBenchmark."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol import channel_vars as cv
from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.tables import LedgerEntry, Reservation
from callcontrol_lab.bench.micro.client import Exchange, PhaseResult
from callcontrol_lab.bench.micro.errors import BrokenBenchmark
from callcontrol_lab.bench.micro.provision import Inmate

# As the dialplan checks an allow's fields before it bridges (dialplan/cells.conf), after its
# whole shape (channel_vars.read_answer).
_DIAL_NUMBER = re.compile(r"[+]?[0-9]{3,20}")
_DIGITS = re.compile(r"[0-9]+")


def verdict(exchange: Exchange, *, baseline: bool) -> str:
    """ "allow" when the dialplan would bridge this call (for the baseline: an allow of the
    answer's shape); else what went wrong: "refuse:REASON" or "error:..."."""
    _latency, variables, error, _commands = exchange
    if error:
        return f"error:{error}"
    said = variables.get(cv.ANSWER)
    if said is None:  # no answer: the handler failed before it could say (see its log)
        return "refuse:no answer"
    fields = cv.read_answer(said)
    if fields is None:
        return f"error:an answer the dialplan would refuse for its shape {said[:80]!r}"
    if fields[cv.DECISION] != cv.ALLOW:
        return f"refuse:{fields[cv.REASON]}"
    if baseline:
        return "allow"
    number, limit = fields[cv.NUMBER], fields[cv.LIMIT_MS]
    if not _DIAL_NUMBER.fullmatch(number):
        return f"error:allowed without a dialable number {number!r}"
    if not _DIGITS.fullmatch(limit) or int(limit) < 1000:
        return f"error:allowed without a usable limit {limit!r}"
    return "allow"


def _check_phase(what: str, phase: PhaseResult, verdicts: Sequence[str]) -> None:
    bad = [v for v in verdicts if v != "allow"]
    if bad:
        raise BrokenBenchmark(
            f"{what}: {len(bad)} of {len(verdicts)} calls were not allowed or failed; a refusal "
            "means the benchmark is broken (its data, or the code), not a decision",
            dict(Counter(verdicts)),
            sorted(set(bad))[:5],
        )


async def _check_settled(
    what: str,
    phase: PhaseResult,
    sessions: async_sessionmaker[AsyncSession],
    uniqueids: Sequence[str],
) -> None:
    """Every call-end request ended well, and (since the server closes the socket whatever
    happened) every call of the round is settled in the database."""
    errors = [e[2] for e in phase.exchanges if e[2]]
    if errors:
        raise BrokenBenchmark(
            f"{what}: {len(errors)} of {len(phase.exchanges)} call-end requests failed",
            dict(Counter(f"error:{e}" for e in errors)),
            sorted(set(errors))[:5],
        )
    async with sessions() as s:
        unsettled = list(
            await s.scalars(
                select(m.Call.uniqueid).where(
                    m.Call.uniqueid.in_(uniqueids), m.Call.settled_at.is_(None)
                )
            )
        )
    if unsettled:
        raise BrokenBenchmark(
            f"{what}: {len(unsettled)} of {len(uniqueids)} calls were not settled (the call-end "
            "route failed: see the daemon's log)",
            {"settled": len(uniqueids) - len(unsettled), "not settled": len(unsettled)},
            unsettled[:5],
        )


# --- checking the database afterwards ----------------------------------------------------------


@dataclass(frozen=True)
class Watermark:
    """The last ids before the benchmark's calls: what a history (bench/history.py) already
    held is not the benchmark's to count."""

    decision: int = 0
    call: int = 0
    entry: int = 0


async def watermark(sessions: async_sessionmaker[AsyncSession]) -> Watermark:
    async with sessions() as s:
        last = [
            int(await s.scalar(select(func.coalesce(func.max(col), 0))) or 0)
            for col in (m.CallDecision.id, m.Call.id, LedgerEntry.id)
        ]
    return Watermark(*last)


async def check_database(
    sessions: async_sessionmaker[AsyncSession],
    inmates: Sequence[Inmate],
    expected_calls: int,
    after: Watermark = Watermark(),
) -> dict[str, Any]:
    """What the database holds for the benchmark's prisoners (their rows after ``after``);
    BrokenBenchmark if it is not every call allowed, settled and charged once, with no money
    still held. Every account of theirs must equal its whole ledger."""
    ids = [i.prisoner_id for i in inmates]
    async with sessions() as s:
        decisions = dict(
            (
                await s.execute(
                    select(m.CallDecision.outcome, func.count())
                    .where(m.CallDecision.prisoner_id.in_(ids), m.CallDecision.id > after.decision)
                    .group_by(m.CallDecision.outcome)
                )
            ).all()
        )
        of_ours = m.Call.prisoner_id.in_(ids) & (m.Call.id > after.call)
        calls = await s.scalar(select(func.count()).select_from(m.Call).where(of_ours))
        count_calls = select(func.count()).select_from(m.Call).where(of_ours)
        settled = await s.scalar(count_calls.where(m.Call.settled_at.is_not(None)))
        still_open = await s.scalar(count_calls.where(m.Call.ended_at.is_(None)))
        charged_calls, charged_pence = (
            await s.execute(
                select(func.count(), func.coalesce(func.sum(m.Call.charge_pence), 0)).where(
                    of_ours, m.Call.charge_pence > 0
                )
            )
        ).one()
        reservations = dict(
            (
                await s.execute(
                    select(Reservation.status, func.count())
                    .where(Reservation.prisoner_id.in_(ids), Reservation.call_id > after.call)
                    .group_by(Reservation.status)
                )
            ).all()
        )
        charges, charge_calls, charge_sum = (
            await s.execute(
                select(
                    func.count(),
                    func.count(func.distinct(LedgerEntry.call_id)),
                    func.coalesce(func.sum(LedgerEntry.amount_pence), 0),
                ).where(
                    LedgerEntry.prisoner_id.in_(ids),
                    LedgerEntry.kind == "charge",
                    LedgerEntry.id > after.entry,
                )
            )
        ).one()
        mismatched: list[str] = []
        for pid in ids:
            try:
                await ledger.verify_account(s, pid)
            except ledger.AccountMismatch as e:
                mismatched.append(str(e))
    checks = {
        "decisions_allowed": int(decisions.get("allow", 0)),
        "decisions_refused": int(decisions.get("refuse", 0)),
        "calls": int(calls or 0),
        "calls_settled": int(settled or 0),
        "calls_open": int(still_open or 0),
        "calls_charged": int(charged_calls),
        "reservations": {str(k): int(v) for k, v in reservations.items()},
        "charge_entries": int(charges),
        "charge_entries_calls": int(charge_calls),
        "charged_pence": int(charged_pence),
        "ledger_charged_pence": -int(charge_sum),
        "accounts_verified": len(ids) - len(mismatched),
    }
    problems = []
    if checks["decisions_allowed"] != expected_calls or checks["decisions_refused"]:
        problems.append("decisions stored")
    if not checks["calls"] == checks["calls_settled"] == expected_calls or checks["calls_open"]:
        problems.append("calls opened and settled")
    if checks["reservations"] != {"settled": expected_calls}:
        problems.append("reservations")
    if not checks["charge_entries"] == checks["charge_entries_calls"] == checks["calls_charged"]:
        problems.append("one charge entry per charged call")
    if checks["charged_pence"] != checks["ledger_charged_pence"]:
        problems.append("charges on the calls and in the ledger")
    if mismatched:
        problems.append("accounts")
    if problems:
        raise BrokenBenchmark(
            f"the database disagrees with the benchmark ({', '.join(problems)}): {checks}",
            {"database": 1},
            mismatched[:5],
        )
    return checks
