"""Each call of a load against the daemon's own records: the decision, the call, the ledger and
the recording store. ``judge`` is pure; ``gather`` reads the SIPp logs and the database."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from callcontrol.adapters.db.engine import database_url, make_engine, session_factory
from callcontrol.config import Settings
from callcontrol.domain.tariffs import Rounding, charge_pence
from callcontrol.services import recordings
from callcontrol_lab.simulator import logs
from callcontrol_lab.simulator.load.mix import EXPECTED, Kind
from callcontrol_lab.simulator.load.plan import PlannedCall
from callcontrol_lab.simulator.verdict import keyed_at

TALK_TOLERANCE_S = 2.0  # the daemon's talk time against the called party's own
# A connected call must have been talked: the called party saw at least this share of the talk
# its handset planned. Less, and the handset hung up before the call was through (its script
# keeps its own timers, so a slow setup eats the talk): no service, in any way of deciding.
SHORT_TALK_SHARE = 0.5
# A recording's length against the talk time (whole seconds, rounded): at most this much
# shorter (the rounding, and MixMonitor starts at the bridge, just after the acceptance), and
# this much longer plus RECORDING_PADDING of the talk.
RECORDING_TOLERANCE_MS = 2000
# Why a recording may be longer than the talk: MixMonitor's D file is built in 20 ms frames,
# each one frame of both directions (Asterisk 22 main/audiohook.c, audiohook_read_frame_both).
# When one direction has sent nothing for 80 ms (or the other has 4 frames waiting), the other
# direction's frames are written alone with silence for the late side, and the late frames,
# when they come, are written alone too, with silence beside them: no frame is doubled, but a
# late stretch takes its length twice in the file (Asterisk's own comment there: "a slight
# overrun in recording duration is acceptable"). Measured in the lab (issue 12): a file holds
# exactly the talk's wall time (acceptance to end, within 0.03 s) on a quiet Asterisk; with the
# called party's audio late in bursts (its SIPp held to 1% of a core), every file was 1.0 to
# 3.9 s longer than that on 16 to 20 s of talk, and the excess was exactly the frames that
# held the called party alone (correlation 0.998), nothing lost or cut; the capacity run of
# 2026-12-05 (244 calls at once, a full machine) had files up to 2.2 s longer than 41 s of
# talk. So the longer bound grows with the talk; a recording shorter than the talk (cut, or
# stopped early) is still held to the 2 s, and one of a privileged call, or none, still fails.
# What length alone no longer tells: a recording started at the called party's answer instead
# of the acceptance (about 2.6 s more with the runner's timing) on a call of 6 s or more.
RECORDING_PADDING = 0.10


@dataclass
class DbFacts:
    """The daemon's records of one call (by the handset's SIP Call-ID)."""

    decision: str | None = None
    reason: str | None = None
    decision_ms: float | None = None
    call_row: int | None = None  # calls.id
    accepted: bool | None = None
    dial_status: str = ""
    ended_by: str = ""
    talk_seconds: int | None = None
    charge_pence: int | None = None  # None: not settled
    recording_note: str = ""
    rate: int | None = None  # the reservation's, hundredths of a penny a minute
    rounding: str = ""
    free: bool = False
    reserved_pence: int | None = None
    ledger_charges: list[int] = field(default_factory=list)  # every ledger amount of the call
    reservation_status: str = ""  # open | settled | released
    privileged: bool | None = None  # the decision's and the call's flags agree, or None
    uniqueid: str = ""  # the caller's channel: its spool file is UNIQUEID.raw
    spooled: bool = False  # audio for it was seen in the recordings spool during the run
    decisions: int = 1  # how many decisions the daemon recorded for this handset call
    recording_ms: int | None = None  # the stored recording's length
    recording_missing: str = ""  # why, if the daemon marked it missing
    store_problems: list[str] = field(default_factory=list)  # verify's lines about this call


@dataclass
class SipFacts:
    """What the SIPp logs say about one call."""

    call_id: str
    handset: logs.HandsetLog | None = None
    called: logs.CalledPartyLog | None = None
    status: int | None = None  # the last final response to the handset's INVITE
    dtmf_ms: int = 200
    called_invites: int = 0  # INVITEs the called party got for this handset call

    @property
    def observed_talk_s(self) -> float | None:
        """From the called party's accept digit being read to the end, as it saw it."""
        c = self.called
        if c is None or c.answered_at is None:
            return None
        key = keyed_at(c, self.dtmf_ms)
        end = c.talk_end_at
        if key is None or end is None or end <= key:
            return None
        return end - key


@dataclass
class Verdict:
    planned: PlannedCall
    sip: SipFacts
    db: DbFacts
    outcome: str  # connected | refused | unanswered | failed
    problems: list[str]

    def to_dict(self) -> dict[str, object]:
        c = self.sip.called
        h = self.sip.handset
        return {
            "index": self.planned.index,
            "kind": str(self.planned.kind),
            "cell": self.planned.cell.name,
            "number": self.planned.number,
            "call_id": self.sip.call_id,
            "outcome": self.outcome,
            "sip_status": self.sip.status,
            "decision": self.db.decision,
            "reason": self.db.reason,
            "decision_ms": self.db.decision_ms,
            "setup_ms": setup_ms(self.sip),
            "post_pin_ms": post_pin_ms(self.planned, self.sip),
            "invite_at": h.invite_at if h else None,
            "called_party_invited": c is not None and c.invite_at is not None,
            "talk_seconds": self.db.talk_seconds,
            "observed_talk_s": (
                round(self.sip.observed_talk_s, 2) if self.sip.observed_talk_s else None
            ),
            "charge_pence": self.db.charge_pence,
            "recording_ms": self.db.recording_ms,
            "problems": self.problems,
        }


def setup_ms(sip: SipFacts) -> float | None:
    """The handset's INVITE to the called party's INVITE (it rings at once): the whole setup,
    PIN entry included."""
    h, c = sip.handset, sip.called
    if h is None or c is None or h.invite_at is None or c.invite_at is None:
        return None
    return round((c.invite_at - h.invite_at) * 1000, 1)


def post_pin_ms(planned: PlannedCall, sip: SipFacts) -> float | None:
    """The last PIN digit keyed to the called party's INVITE: the daemon and Asterisk only."""
    h, c = sip.handset, sip.called
    if h is None or c is None or not h.pin_at or c.invite_at is None:
        return None
    pin = planned.pins[min(len(h.pin_at), len(planned.pins)) - 1]
    keyed = h.pin_at[-1] + logs.dtmf_end_ms(logs.keyed(pin), sip.dtmf_ms) / 1000
    return round((c.invite_at - keyed) * 1000, 1)


def expected_charge(db: DbFacts) -> int | None:
    """What the daemon should have charged, from its own talk time and the call's rate."""
    if db.charge_pence is None or db.rate is None:
        return None
    if not db.accepted or db.free:
        return 0
    talk = db.talk_seconds or 0
    charge = charge_pence(db.rate, talk, Rounding(db.rounding))
    return min(charge, db.reserved_pence) if db.reserved_pence is not None else charge


def recording_misfit(db: DbFacts) -> str:
    """Why the recording's length does not fit the talk time ("" if it does): see
    RECORDING_PADDING for why it may be longer than the talk, never much shorter."""
    if db.recording_ms is None or db.talk_seconds is None:
        return ""
    talk_ms = db.talk_seconds * 1000
    if db.recording_ms < talk_ms - RECORDING_TOLERANCE_MS:
        return f"recording of {db.recording_ms} ms for {db.talk_seconds} s of talk (cut short)"
    longest = talk_ms + RECORDING_TOLERANCE_MS + round(RECORDING_PADDING * talk_ms)
    if db.recording_ms > longest:
        return (
            f"recording of {db.recording_ms} ms for {db.talk_seconds} s of talk (more than "
            f"{longest} ms: longer than late audio's padding explains)"
        )
    return ""


def judge(planned: PlannedCall, sip: SipFacts, db: DbFacts) -> Verdict:
    """The call's outcome, and everything in the records that is not what its kind expects."""
    want = EXPECTED[planned.kind]
    problems: list[str] = []
    h, c = sip.handset, sip.called
    invited = c is not None and c.invite_at is not None
    answered_by_asterisk = h is not None and h.answered_at is not None
    if h is None:
        outcome = "failed"
        problems.append("the handset's SIPp has no record of the call")
    elif not answered_by_asterisk:
        outcome = "failed"
        problems.append(f"Asterisk did not answer the handset (SIP status {sip.status})")
    elif db.decision is None:
        outcome = "failed"
        problems.append("the daemon recorded no decision")
    elif db.decision == "refuse":
        outcome = "refused"
    elif db.accepted:
        outcome = "connected"
    else:
        outcome = "unanswered"
    if outcome == "failed":
        return Verdict(planned, sip, db, outcome, problems)
    if h is not None and h.invite_data.split()[:1] != [planned.cell.name]:
        problems.append(f"SIPp placed this call as {h.invite_data!r}, not from its planned cell")
    if db.decisions > 1:
        problems.append(f"{db.decisions} decisions recorded for one handset call")
    if sip.called_invites > 1:
        problems.append(f"the called party got {sip.called_invites} INVITEs for one call")
    if db.decision != want.decision or db.reason != want.reason:
        problems.append(
            f"decided {db.decision}/{db.reason}, expected {want.decision}/{want.reason}"
        )
    if want.decision == "refuse":
        if invited:
            problems.append("refused, but the called party got an INVITE")
        if db.call_row is not None:
            problems.append("refused, but a call row exists")
        return Verdict(planned, sip, db, outcome, problems)
    # Allowed: the call must be settled, billed once and right, recorded if it should be.
    if not invited:
        problems.append("allowed, but the called party never got an INVITE")
    if db.call_row is None:
        problems.append("allowed, but there is no call row")
        return Verdict(planned, sip, db, outcome, problems)
    if db.charge_pence is None:
        problems.append("never settled")
        return Verdict(planned, sip, db, outcome, problems)
    if db.rate is None:
        problems.append("allowed without a credit reservation")
    elif db.reservation_status not in ("settled", "released"):
        problems.append(f"its reservation is still {db.reservation_status or 'unknown'}")
    want_privileged = planned.kind is Kind.PRIVILEGED
    if db.privileged is None:
        problems.append("the decision and the call disagree on whether it is privileged")
    elif db.privileged != want_privileged:
        problems.append(f"privileged is {db.privileged}, expected {want_privileged}")
    # Privileged calls are free; the others are rated at the tariff (busy and unanswered ones
    # then cost nothing because nobody talked).
    if db.rate is not None and db.free != want_privileged:
        problems.append(
            "rated as free, expected the tariff"
            if db.free
            else "rated at the tariff, expected free"
        )
    if want.bridged:
        if not db.accepted:
            problems.append(f"not bridged (dial status {db.dial_status or 'none'})")
        if db.ended_by != "caller":
            problems.append(f"ended by {db.ended_by or 'nobody'}, expected the caller")
        observed = sip.observed_talk_s
        if db.talk_seconds is None:
            problems.append("bridged, but no talk time recorded")
        elif observed is None:
            problems.append("the called party saw no talk")
        elif abs(db.talk_seconds - observed) > TALK_TOLERANCE_S:
            problems.append(
                f"talk time {db.talk_seconds} s in the records, {observed:.1f} s seen by the "
                "called party"
            )
        if (short := talk_cut_short(planned, sip)) is not None:
            problems.append(short)
    else:
        if db.accepted:
            problems.append("bridged, but its kind should never be")
        if want.dial_statuses and db.dial_status not in want.dial_statuses:
            problems.append(
                f"dial status {db.dial_status or 'none'}, expected {'/'.join(want.dial_statuses)}"
            )
    expected = expected_charge(db)
    if not want.charged and db.charge_pence:
        problems.append(f"charged {db.charge_pence}p, expected nothing")
    if expected is not None and db.charge_pence != expected:
        problems.append(f"charged {db.charge_pence}p, the tariff says {expected}p")
    wanted_entries = [-db.charge_pence] if db.charge_pence else []
    if sorted(db.ledger_charges) != wanted_entries:
        problems.append(
            f"ledger entries {db.ledger_charges} for a charge of {db.charge_pence}p "
            "(billed exactly once expected)"
        )
    if want.recorded:
        if db.recording_ms is None:
            why = f": {db.recording_missing}" if db.recording_missing else ""
            problems.append(f"no recording{why}")
        elif db.talk_seconds is not None and (misfit := recording_misfit(db)):
            problems.append(misfit)
        problems += db.store_problems
    else:
        if db.recording_ms is not None:
            problems.append("recorded, but its kind must never be")
        if db.spooled:
            problems.append("audio was spooled (recorded) for it during the call")
        if planned.kind is Kind.PRIVILEGED and not db.recording_note.startswith("not recorded"):
            problems.append(f"privileged call without its note (note {db.recording_note!r})")
    return Verdict(planned, sip, db, outcome, problems)


def talk_cut_short(planned: PlannedCall, sip: SipFacts) -> str | None:
    """Why a connected call was no call (the handset hung up before the talk), or None."""
    observed, wanted = sip.observed_talk_s, planned.talk_ms / 1000
    if observed is None or wanted <= 0 or observed >= wanted * SHORT_TALK_SHARE:
        return None
    return (
        f"talked {observed:.1f} s of the {wanted:g} s planned: the handset hung up before the "
        "call was through (setup too slow)"
    )


def judge_sip_only(planned: PlannedCall, sip: SipFacts) -> Verdict:
    """A call with no daemon to ask (the benchmark's static dialplan bridges every call): it
    is connected when the called party answered, keyed its digit and talked; else failed."""
    h, c = sip.handset, sip.called
    problems: list[str] = []
    if h is None or h.answered_at is None:
        problems.append(f"Asterisk did not answer the handset (SIP status {sip.status})")
    elif c is None or c.invite_at is None:
        problems.append("the called party never got an INVITE")
    elif sip.observed_talk_s is None:
        problems.append("the called party saw no talk")
    elif (short := talk_cut_short(planned, sip)) is not None:
        problems.append(short)
    outcome = "failed" if problems else "connected"
    return Verdict(planned, sip, DbFacts(), outcome, problems)


# --- gathering ---------------------------------------------------------------------------------


def call_id_of(prefix: str, planned: PlannedCall) -> str:
    """The handset's SIP Call-ID: SIPp numbers its calls from 1, one per injection line."""
    return f"{prefix}{planned.index + 1}"


def sip_facts(
    run_dir: Path, prefix: str, calls: Sequence[PlannedCall], dtmf_ms: int
) -> list[SipFacts]:
    """Each planned call as the two SIPp logs and the message trace tell it."""
    read = _read
    handsets = logs.handset_calls(logs.parse_events(read(run_dir / "handset_logs.log")))
    called: dict[str, logs.CalledPartyLog] = {}
    invites: dict[str, int] = {}
    for c in logs.called_party_calls(logs.parse_events(read(run_dir / "called_party_logs.log"))):
        if c.invite_at is None:
            continue
        invites[c.x_cc_call] = invites.get(c.x_cc_call, 0) + 1
        called.setdefault(c.x_cc_call, c)
    statuses = final_statuses(logs.parse_trace(read(run_dir / "handset_messages.log")))
    out = []
    for p in calls:
        cid = call_id_of(prefix, p)
        out.append(
            SipFacts(
                cid, handsets.get(cid), called.get(cid), statuses.get(cid), dtmf_ms,
                invites.get(cid, 0),
            )
        )  # fmt: skip
    return out


def final_statuses(messages: Iterable[logs.TracedMessage]) -> dict[str, int]:
    """The last final response to each call's INVITE, by Call-ID (one pass)."""
    out: dict[str, int] = {}
    for m in messages:
        if not m.sent and m.status is not None and m.status >= 200 and m.cseq_method == "INVITE":
            out[m.call_id] = m.status
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


_DECISIONS = """
SELECT d.sip_call_id, d.outcome, d.reason, d.decision_ms, c.id AS call_row, c.accepted,
       c.dial_status, c.ended_by, c.talk_seconds, c.charge_pence, c.recording_note,
       d.privileged AS d_privileged, c.privileged AS c_privileged, c.uniqueid,
       r.rate, r.rounding, r.free, r.amount_pence AS reserved, r.status AS reservation_status,
       rec.duration_ms, m.why AS missing_why, m.resolved_at AS missing_resolved
FROM call_decisions d
LEFT JOIN calls c ON c.decision_id = d.id
LEFT JOIN reservations r ON r.call_id = c.id
LEFT JOIN recordings rec ON rec.call_id = c.id
LEFT JOIN missing_recordings m ON m.call_id = c.id
WHERE d.sip_call_id IN ({ids})
ORDER BY d.id
"""
_CHARGES = """
SELECT e.call_id, e.amount_pence FROM ledger_entries e WHERE e.call_id IN ({ids})
"""
_PENDING = """
SELECT count(*) FROM call_decisions d JOIN calls c ON c.decision_id = d.id
LEFT JOIN recordings rec ON rec.call_id = c.id
LEFT JOIN missing_recordings m ON m.call_id = c.id
WHERE d.sip_call_id IN ({ids})
  AND (c.charge_pence IS NULL
       OR (c.accepted AND c.recording_note = '' AND rec.id IS NULL AND m.id IS NULL))
"""


def _in(values: Sequence[object], name: str) -> tuple[str, dict[str, object]]:
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{k}" for k in params) or "NULL", params


async def db_facts(
    settings: Settings,
    call_ids: Sequence[str],
    settle_timeout_s: float = 60.0,
    spooled: Collection[str] = (),
) -> tuple[dict[str, DbFacts], list[str], float]:
    """The daemon's records by Call-ID, once every allowed call is settled and every recordable
    one ingested (or ``settle_timeout_s`` has passed); also the store's problems (``recordings
    verify``) and how long the settling took."""
    engine = make_engine(database_url(settings))
    sessions = session_factory(engine)
    facts: dict[str, DbFacts] = {}
    chunks = [list(call_ids[i : i + 500]) for i in range(0, len(call_ids), 500)]
    waited = time.monotonic()
    try:
        deadline = time.monotonic() + settle_timeout_s
        async with engine.connect() as conn:
            while True:
                pending = 0
                for chunk in chunks:
                    ids, params = _in(chunk, "c")
                    pending += await conn.scalar(text(_PENDING.format(ids=ids)), params) or 0
                await conn.rollback()
                if not pending or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            settle_s = time.monotonic() - waited
            rows_by_call: dict[int, DbFacts] = {}
            for chunk in chunks:
                ids, params = _in(chunk, "c")
                for r in (await conn.execute(text(_DECISIONS.format(ids=ids)), params)).all():
                    f = DbFacts(
                        decision=r.outcome,
                        reason=r.reason,
                        decision_ms=r.decision_ms,
                        call_row=r.call_row,
                        accepted=r.accepted,
                        dial_status=r.dial_status or "",
                        ended_by=r.ended_by or "",
                        talk_seconds=r.talk_seconds,
                        charge_pence=r.charge_pence,
                        recording_note=r.recording_note or "",
                        rate=r.rate,
                        rounding=r.rounding or "",
                        free=bool(r.free),
                        reserved_pence=r.reserved,
                        recording_ms=r.duration_ms,
                        reservation_status=r.reservation_status or "",
                        privileged=(
                            bool(r.d_privileged)
                            if r.call_row is None or bool(r.c_privileged) == bool(r.d_privileged)
                            else None
                        ),
                        uniqueid=r.uniqueid or "",
                        spooled=bool(r.uniqueid) and f"{r.uniqueid}.raw" in spooled,
                        recording_missing=(r.missing_why or "")
                        if r.missing_resolved is None
                        else "",
                    )
                    earlier = facts.get(r.sip_call_id)
                    if earlier is not None:  # the last decision stands; the count shows
                        f.decisions = earlier.decisions + 1
                    facts[r.sip_call_id] = f
                    if f.call_row is not None:
                        rows_by_call[f.call_row] = f
            rows = list(rows_by_call)
            for i in range(0, len(rows), 500):
                ids, params = _in(rows[i : i + 500], "r")
                for call_row, amount in (
                    await conn.execute(text(_CHARGES.format(ids=ids)), params)
                ).all():
                    rows_by_call[call_row].ledger_charges.append(amount)
        store = settings.path(settings.recording.store_dir)
        problems = await recordings.verify(sessions, store)
        for line in problems:
            m = re.search(r"\(call (\d+)\)", line)
            if m and int(m.group(1)) in rows_by_call:
                rows_by_call[int(m.group(1))].store_problems.append(line)
        return facts, problems, settle_s
    finally:
        await engine.dispose()
