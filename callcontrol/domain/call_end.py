"""The facts of a call's end as Asterisk reports them, and who ended it.

Asterisk reports each allowed call's end twice: a line in the journal (written by the dialplan
whatever the daemon's state) and a FastAGI request from the caller's hangup handler. Both carry
the same fields, parsed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

# Q.850 causes with which one of the parties ended or refused the call. Anything else
# (network out of order, temporary failure, Asterisk going away, ...) is the system's doing.
PARTY_CAUSES = frozenset({"16", "17", "18", "19", "21", "31"})


@dataclass(frozen=True)
class CallEnd:
    uniqueid: str  # the caller's (handset's) channel
    accepted_at: datetime | None  # when the called party accepted: the bridge began
    ended_at: datetime
    dial_status: str = ""  # ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, ...
    hangup_cause: str = ""  # Q.850 cause code
    hangup_source: str = ""  # the channel that hung up, if Asterisk knows

    def talk_seconds(self) -> int:
        """Whole seconds talked (from acceptance to the end), to the nearest second."""
        if self.accepted_at is None:
            return 0
        ms = int((self.ended_at - self.accepted_at).total_seconds() * 1000)
        return max(0, (ms + 500) // 1000)


def epoch(text: str) -> datetime | None:
    """Seconds since the epoch, as Asterisk's STRFTIME(,,%s.%3q) writes them; None if empty."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a time: {text!r}") from None
    if not value.is_finite() or value < 0 or value > 10**11:
        raise ValueError(f"not a plausible time: {text!r}")
    return datetime.fromtimestamp(float(value), UTC)


def from_fields(fields: Sequence[str]) -> CallEnd:
    """UNIQUEID, ACCEPTED_AT, ENDED_AT, DIALSTATUS, HANGUPCAUSE, HANGUPSOURCE (the last may
    hold the separator itself: it is joined back)."""
    if len(fields) < 3:
        raise ValueError(f"a call end needs at least 3 fields, got {len(fields)}")
    uniqueid = fields[0].strip()
    if not uniqueid or len(uniqueid) > 64:
        raise ValueError("no channel unique id")
    ended = epoch(fields[2])
    if ended is None:
        raise ValueError("no end time")
    return CallEnd(
        uniqueid=uniqueid,
        accepted_at=epoch(fields[1]),
        ended_at=ended,
        dial_status=fields[3].strip()[:32] if len(fields) > 3 else "",
        hangup_cause=fields[4].strip()[:16] if len(fields) > 4 else "",
        hangup_source=",".join(fields[5:]).strip()[:128] if len(fields) > 5 else "",
    )


@dataclass(frozen=True)
class JournalEntry:
    accepted_at: datetime | None = None
    end: CallEnd | None = None


def read_journal(lines: Iterable[str]) -> tuple[dict[str, JournalEntry], list[str]]:
    """What the journal says of each call, and the lines it could not read (for the log)."""
    calls: dict[str, JournalEntry] = {}
    bad: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            continue
        kind, _, rest = line.partition("|")
        parts = rest.split("|")
        try:
            if kind == "accepted" and len(parts) >= 2:
                at = epoch(parts[1])
                entry = calls.get(parts[0], JournalEntry())
                calls[parts[0]] = JournalEntry(accepted_at=at, end=entry.end)
            elif kind == "ended":
                end = from_fields([parts[0], parts[1], parts[2], *parts[3:5], "|".join(parts[5:])])
                previous = calls.get(end.uniqueid, JournalEntry())
                if end.accepted_at is None and previous.accepted_at is not None:
                    end = CallEnd(
                        end.uniqueid,
                        previous.accepted_at,
                        end.ended_at,
                        end.dial_status,
                        end.hangup_cause,
                        end.hangup_source,
                    )
                calls[end.uniqueid] = JournalEntry(accepted_at=end.accepted_at, end=end)
            else:
                bad.append(line)
        except (ValueError, IndexError):
            bad.append(line)
    return calls, bad


def ended_by(end: CallEnd, caller_channel: str, limit_s: int | None) -> str:
    """caller | called | limit | system: who ended the call.

    The time limit first; then the channel Asterisk names as the one that hung up: the
    caller's, or the called party's with a normal cause. With no such channel (Asterisk shut
    down, a failure) or an abnormal cause, the system ended it.
    """
    talk = end.talk_seconds()
    if end.accepted_at is not None and limit_s is not None and talk >= limit_s - 1:
        return "limit"
    source = end.hangup_source
    if source and caller_channel and source.startswith(caller_channel):
        return "caller"
    if source and end.hangup_cause in PARTY_CAUSES:
        return "called"
    return "system"


# --- the journal read in pieces -----------------------------------------------------------------


@dataclass(frozen=True)
class JournalPosition:
    """Where reading the journal stopped: the file (device and inode, which a rename keeps) and
    the offset of the first byte not yet read."""

    device: int
    inode: int
    offset: int


def complete_lines(data: bytes) -> tuple[list[str], int]:
    """The whole lines in ``data`` (each ended by a newline) and how many bytes they take.

    What follows the last newline is a line Asterisk may still be writing: it is not consumed,
    and is read again, whole, next time.
    """
    end = data.rfind(b"\n") + 1
    if end == 0:
        return [], 0
    return data[:end].decode("utf-8", errors="replace").splitlines(), end


def merge(old: JournalEntry | None, new: JournalEntry) -> JournalEntry:
    """What the journal says of a call, from what was read before and what was read now (in
    that order). Reading a line twice changes nothing, so a piece may be reread safely."""
    if old is None:
        return new
    accepted = new.accepted_at or old.accepted_at
    end = new.end or old.end
    if end is not None and end.accepted_at is None and accepted is not None:
        end = CallEnd(
            end.uniqueid, accepted, end.ended_at, end.dial_status, end.hangup_cause,
            end.hangup_source,
        )  # fmt: skip
    return JournalEntry(accepted_at=end.accepted_at if end else accepted, end=end)


def line_time(line: str) -> datetime | None:
    """When a journal line was written (its acceptance's or end's time), or None if unreadable."""
    kind, _, rest = line.rstrip("\r\n").partition("|")
    parts = rest.split("|")
    try:
        if kind == "accepted" and len(parts) >= 2:
            return epoch(parts[1])
        if kind == "ended" and len(parts) >= 3:
            return epoch(parts[2])
    except ValueError:
        return None
    return None
