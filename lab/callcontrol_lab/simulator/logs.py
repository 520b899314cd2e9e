"""Reading what the SIPp scenarios leave behind, and writing the handsets' injection file.

Both scenarios log each step (SIPp ``<log>`` actions, ``-trace_logs``) as one line::

    CCSIM|event|call-id|data|seconds|microseconds

with wall-clock time from SIPp's ``gettimeofday`` (printed as doubles, "1795906146.000000" and
"910601.000000"). Both SIPp instances run on the same machine, so times from the two logs can be
subtracted. The handset's final SIP status comes from its message trace (``-trace_msg``).

Handset events: invite, answered (Asterisk's 200), pin (data: the try), bye_sent,
bye_received (data: the scenario step it interrupted), rejected, end.
Called-party events (data: the X-CC-Call header): invite, answered (200 sent), dtmf (it starts
keying its accept or decline digit), busy, cancel, bye_received, bye_sent, end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# SIPp sends N DTMF digits in 400 ms of filler plus a tone and a gap of DTMF_MS for each digit,
# the last digit's end arriving at 400 + (2N + 1) * DTMF_MS (measured: 2.21 s for 4 digits of
# 200 ms). The audio stays paused for that long plus this margin.
DTMF_FILLER_MS = 400
KEYING_MARGIN_MS = 60
MAX_PIN_TRIES = 3


@dataclass(frozen=True)
class LogEvent:
    event: str
    call_id: str
    data: str
    at: float  # seconds since the epoch


def parse_events(text: str) -> list[LogEvent]:
    """The CCSIM lines of a SIPp log, in order; anything else is skipped."""
    events = []
    for line in text.splitlines():
        if not line.startswith("CCSIM|"):
            continue
        parts = line.rstrip("\r\n").split("|")
        if len(parts) != 6:
            continue
        _, event, call_id, data, sec, usec = parts
        try:
            at = float(sec) + float(usec) / 1e6
        except ValueError:
            continue
        events.append(LogEvent(event, call_id.strip(), data.strip(), at))
    return events


@dataclass
class HandsetLog:
    """One handset call as its SIPp log tells it."""

    call_id: str
    invite_at: float | None = None
    answered_at: float | None = None
    pin_at: list[float] = field(default_factory=list)
    invite_data: str = ""  # "CELL NUMBER" as the injection line gave them
    bye_sent_at: float | None = None
    bye_received_at: float | None = None
    rejected_at: float | None = None
    end_at: float | None = None


@dataclass
class CalledPartyLog:
    """One call at the called party, keyed by its X-CC-Call header (the handset's Call-ID)."""

    x_cc_call: str
    call_id: str  # the Call-ID of Asterisk's outgoing leg
    invite_at: float | None = None
    answered_at: float | None = None
    dtmf_at: float | None = None  # keying the accept or decline digit began
    busy_at: float | None = None
    cancel_at: float | None = None
    bye_received_at: float | None = None
    bye_sent_at: float | None = None
    end_at: float | None = None

    @property
    def talk_end_at(self) -> float | None:
        ends = [t for t in (self.bye_received_at, self.bye_sent_at) if t is not None]
        return min(ends) if ends else None

    @property
    def talk_s(self) -> float:
        end = self.talk_end_at
        if self.answered_at is None or end is None:
            return 0.0
        return max(0.0, end - self.answered_at)


_HANDSET_TIMES = {
    "invite": "invite_at",
    "answered": "answered_at",
    "bye_sent": "bye_sent_at",
    "bye_received": "bye_received_at",
    "rejected": "rejected_at",
    "end": "end_at",
}
_CALLED_TIMES = {
    "invite": "invite_at",
    "answered": "answered_at",
    "dtmf": "dtmf_at",
    "busy": "busy_at",
    "cancel": "cancel_at",
    "bye_received": "bye_received_at",
    "bye_sent": "bye_sent_at",
    "end": "end_at",
}


def handset_calls(events: Iterable[LogEvent]) -> dict[str, HandsetLog]:
    """The handset calls of a log, by SIP Call-ID (first time of each event kept)."""
    calls: dict[str, HandsetLog] = {}
    for e in events:
        call = calls.setdefault(e.call_id, HandsetLog(e.call_id))
        if e.event == "pin":
            call.pin_at.append(e.at)
        elif e.event == "invite" and not call.invite_data:
            call.invite_data = e.data
            call.invite_at = e.at
        elif e.event in _HANDSET_TIMES and getattr(call, _HANDSET_TIMES[e.event]) is None:
            setattr(call, _HANDSET_TIMES[e.event], e.at)
    return calls


def called_party_calls(events: Iterable[LogEvent]) -> list[CalledPartyLog]:
    """The called party's calls, in the order their INVITEs came (events keyed by its Call-ID)."""
    calls: dict[str, CalledPartyLog] = {}
    for e in events:
        call = calls.get(e.call_id)
        if call is None:
            call = calls[e.call_id] = CalledPartyLog(x_cc_call=e.data, call_id=e.call_id)
        if not call.x_cc_call and e.data:
            call.x_cc_call = e.data
        attr = _CALLED_TIMES.get(e.event)
        if attr and getattr(call, attr) is None:
            setattr(call, attr, e.at)
    return list(calls.values())


# --- the message trace (-trace_msg) ---

_SEPARATOR_RE = re.compile(r"^-{20,}\s*(\S.*)?$")
_DIRECTION_RE = re.compile(r"^\w+ message (sent|received)", re.IGNORECASE)
_STATUS_RE = re.compile(r"^SIP/2\.0 (\d{3})(?: (.*))?$")
_CSEQ_RE = re.compile(r"^CSeq:\s*(\d+)\s+(\w+)", re.IGNORECASE | re.MULTILINE)
_CALL_ID_RE = re.compile(r"^(?:Call-ID|i):\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class TracedMessage:
    at: float | None
    sent: bool
    first_line: str
    call_id: str
    cseq_method: str
    status: int | None  # for responses


def _trace_time(stamp: str) -> float | None:
    stamp = stamp.strip()
    if not stamp:
        return None
    # SIPp 3.8: 2026-11-28T22:45:41.131579Z; older: "2026-11-28\t22:45:41.131579\t1795905941.131579"
    last = stamp.split()[-1]
    try:
        return float(last)
    except ValueError:
        pass
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def parse_trace(text: str) -> list[TracedMessage]:
    """The SIP messages of a SIPp message trace, in order."""
    messages = []
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _SEPARATOR_RE.match(line)
        if m:
            blocks.append((m.group(1) or "", []))
        elif blocks:
            blocks[-1][1].append(line)
    for stamp, lines in blocks:
        direction = None
        body: list[str] = []
        for i, line in enumerate(lines):
            d = _DIRECTION_RE.match(line)
            if d:
                direction = d.group(1).lower()
                body = [x for x in lines[i + 1 :]]
                break
        if direction is None:
            continue
        while body and not body[0].strip():
            body.pop(0)
        if not body:
            continue
        first = body[0].strip()
        head = "\n".join(body)
        cseq = _CSEQ_RE.search(head)
        cid = _CALL_ID_RE.search(head)
        status = _STATUS_RE.match(first)
        messages.append(
            TracedMessage(
                at=_trace_time(stamp),
                sent=direction == "sent",
                first_line=first,
                call_id=cid.group(1) if cid else "",
                cseq_method=cseq.group(2).upper() if cseq else "",
                status=int(status.group(1)) if status else None,
            )
        )
    return messages


def final_invite_status(
    messages: Iterable[TracedMessage], call_id: str | None = None
) -> int | None:
    """The last final response (200 or more) received for an INVITE, or None if none came.

    A 401 or 407 challenge followed by a retried INVITE is not final: only the last one counts.
    """
    status = None
    for m in messages:
        if m.sent or m.status is None or m.status < 200 or m.cseq_method != "INVITE":
            continue
        if call_id is not None and m.call_id != call_id:
            continue
        status = m.status
    return status


def got_response(messages: Iterable[TracedMessage]) -> bool:
    return any(not m.sent and m.status is not None for m in messages)


# --- the injection file ---


def keyed(pin: str) -> str:
    """What a handset keys for ``pin``: the PIN, then "#" to end the entry (the daemon reads
    every key up to "#" or a timeout, so the "#" saves the timeout). "" stays "" (silence)."""
    return pin if not pin or pin.endswith("#") else pin + "#"


def keying_ms(pins: Sequence[str], dtmf_ms: int) -> int:
    """How long SIPp takes to key the longest of ``pins`` (see DTMF_FILLER_MS), plus a margin."""
    digits = max((len(p) for p in pins), default=0)
    return DTMF_FILLER_MS + (2 * digits + 1) * dtmf_ms + KEYING_MARGIN_MS


def dtmf_end_ms(pin: str, dtmf_ms: int) -> int:
    """When the last digit of ``pin`` has been keyed, from the start of keying.

    Also the called party's one digit: 400 + 3 x 200 = 1000 ms (measured: Asterisk's Read()
    returned the digit 1.02 s after the called party's "dtmf" event).
    """
    return DTMF_FILLER_MS + (2 * len(pin) + 1) * dtmf_ms


@dataclass(frozen=True)
class HandsetCall:
    """One line of the handsets' injection file: who calls whom, and the timing of the call."""

    cell: str
    password: str
    number: str
    pins: tuple[str, ...] = ()  # the PIN keyed at each try (the last one repeats)
    pin_tries: int = 1
    first_pin_ms: int = 1500
    dtmf_ms: int = 200
    retry_ms: int = 3000
    hold_ms: int = 10000  # from the end of keying the last PIN to the handset's BYE

    def pin_for_try(self, n: int) -> str:
        """The PIN keyed at try ``n`` (1-based)."""
        if not self.pins:
            return ""
        return self.pins[min(n, len(self.pins)) - 1]

    def fields(self) -> list[str]:
        tries = [keyed(self.pin_for_try(n)) for n in range(1, MAX_PIN_TRIES + 1)]
        used = tries[: self.pin_tries]
        return [
            self.cell,
            self.password,
            self.number,
            *tries,
            str(self.pin_tries),
            str(self.first_pin_ms),
            str(self.dtmf_ms),
            str(keying_ms(used, self.dtmf_ms) if used else 0),
            str(self.retry_ms),
            str(self.hold_ms),
        ]

    def validate(self) -> None:
        """ValueError if SIPp could not carry this call as given."""
        if not 0 <= self.pin_tries <= MAX_PIN_TRIES:
            raise ValueError(f"PIN tries must be 0 to {MAX_PIN_TRIES}, not {self.pin_tries}")
        if self.pin_tries and not self.pins:
            raise ValueError("PIN tries given but no PIN")
        if len(self.pins) > MAX_PIN_TRIES:
            raise ValueError(f"at most {MAX_PIN_TRIES} PINs")
        for pin in self.pins:
            if not pin or not re.fullmatch(r"[0-9*#A-D]+", pin):
                raise ValueError(f"PIN {pin!r}: only digits, *, # and A-D can be keyed")
        if not 50 <= self.dtmf_ms <= 2000:
            raise ValueError("DTMF tone length must be 50 to 2000 ms (SIPp's limits)")
        for name, value in (
            ("cell", self.cell),
            ("password", self.password),
            ("number", self.number),
        ):
            if not value:
                raise ValueError(f"the {name} is empty")
            if any(c in value for c in ";\r\n[]"):
                raise ValueError(f"the {name} cannot contain ';', '[', ']' or a line break")
        if self.cell != self.cell.strip() or " " in self.cell or " " in self.number:
            raise ValueError("the cell and the number cannot contain spaces")
        for name, value in (
            ("first PIN pause", self.first_pin_ms),
            ("retry pause", self.retry_ms),
            ("hold", self.hold_ms),
        ):
            if value < 0:
                raise ValueError(f"the {name} cannot be negative")


def injection_text(calls: Iterable[HandsetCall]) -> str:
    """The injection file (-inf) for handset.xml: one line per call, in order."""
    lines = ["SEQUENTIAL"]
    for call in calls:
        call.validate()
        lines.append(";".join(call.fields()))
    return "\n".join(lines) + "\n"


def write_injection(path: Path, calls: Iterable[HandsetCall]) -> None:
    path.write_text(injection_text(calls))
