"""Every name shared between the dialplan (dialplan/*.conf) and the daemon, in one place, and
the format of the daemon's one answer to a call (CC_ANSWER)."""

from __future__ import annotations

import re

# The FastAGI script that decides a cell's call, run on the decision's Local channel
# ([cc-decide] in dialplan/cells.conf): AGI(${CC_AGI_URL}/cell-call,ENDPOINT_B64,DIALLED_B64,
# CALL_ID_B64,HANDSET_UNIQUEID,HANDSET_CHANNEL_B64) (adapters/agi/cell_call.py: call_args).
CELL_CALL_SCRIPT = "cell-call"
# Record only, from the hangup handler of a call the dialplan refused for what was dialled,
# with the same arguments: stored as refused (invalid_number); the daemon decides nothing.
CELL_REFUSED_SCRIPT = "cell-refused"

# The daemon's whole answer, in ONE variable set on the decision's Local channel with ONE
# SET VARIABLE (each AGI command is a round trip that waits for the channel's thread on a busy
# Asterisk). [cc-decide] copies it to the handset's channel (MASTER_CHANNEL) after a successful
# AGI conversation; [cells] takes one snapshot of it when Dial returns, checks the snapshot's
# whole shape with one REGEX (the *_SHAPE patterns below, word for word) and only then cuts it
# into fields (CUT, by position). Fields are joined by SEPARATOR, which no field can hold:
#   allow:REASON:NUMBER:LIMIT_MS:RECORD     allow:approved_contact:+442079460000:1800000:yes
#   balance:REASON:NEGATIVE:POUNDS:PENCE:MINUTES_LEFT         balance:balance_enquiry:0:4:20:25
#   refuse:REASON                                             refuse:not_approved
# The first field is the decision. REASON is the Reason value (snake_case), for the log line
# only. NUMBER is the normalised number to dial (E.164 or a listed short code): digits with an
# optional "+". LIMIT_MS is the call's time limit in milliseconds (Dial's L()): the least of
# every limit and the credit, 1000 or more. RECORD is "yes" when the call is to be recorded,
# "no" for a privileged call (never recorded). A balance enquiry ([site] balance_code keyed
# after the PIN instead of a number) says NEGATIVE 1 when the available credit is below zero,
# else 0; POUNDS and PENCE (0-99) its size; MINUTES_LEFT the whole minutes left today:
# [cc-balance] in dialplan/cells.conf says them, and nothing is dialled.
# Only an answer of exactly one of these shapes counts: anything else (empty, cut short, an
# extra or missing field, an unknown decision, a letter in a number) is refused (fail closed).
# Nothing that fits a shape holds a character that Asterisk's argument parsing reads (a comma,
# quote, backslash, parenthesis, bracket or brace): no field is read before its shape is known.
ANSWER = "CC_ANSWER"
SEPARATOR = ":"
ALLOW = "allow"
REFUSE = "refuse"
BALANCE = "balance"
ALLOW_SHAPE = "^allow:[a-z_]{1,40}:[+]?[0-9]{3,20}:[0-9]{4,9}:(yes|no)$"
BALANCE_SHAPE = "^balance:[a-z_]{1,40}:[01]:[0-9]{1,9}:[0-9]{1,2}:[0-9]{1,5}$"
REFUSE_SHAPE = "^refuse:[a-z_]{1,40}$"
# The fields by position, under the names the daemon's tests and the benchmark read them by.
DECISION = "decision"
REASON = "reason"
NUMBER = "number"
LIMIT_MS = "limit_ms"
RECORD = "record"
BALANCE_NEGATIVE = "negative"
BALANCE_POUNDS = "pounds"
BALANCE_PENCE = "pence"
MINUTES_LEFT = "minutes_left"
FIELDS = {
    ALLOW: (DECISION, REASON, NUMBER, LIMIT_MS, RECORD),
    BALANCE: (DECISION, REASON, BALANCE_NEGATIVE, BALANCE_POUNDS, BALANCE_PENCE, MINUTES_LEFT),
    REFUSE: (DECISION, REASON),
}
SHAPES = {ALLOW: ALLOW_SHAPE, BALANCE: BALANCE_SHAPE, REFUSE: REFUSE_SHAPE}
# POSIX ERE's ^ and $ with Python's fullmatch: Python's $ would also match before a final "\n".
_SHAPES = {word: re.compile(shape[1:-1]) for word, shape in SHAPES.items()}


def answer(decision: str, *fields: str) -> str:
    """The answer for CC_ANSWER: ValueError rather than anything the dialplan would not take
    as meant (a field holding the separator, a limit under a second, a field too many)."""
    text = SEPARATOR.join((decision, *fields))
    shape = _SHAPES.get(decision)
    if shape is None or not shape.fullmatch(text):
        raise ValueError(f"not an answer the dialplan takes: {text[:120]!r}")
    if decision == ALLOW and int(fields[2]) < 1000:
        raise ValueError(f"a limit under a second: {fields[2]!r}")
    return text


def read_answer(text: str) -> dict[str, str] | None:
    """An answer's fields by name, as [cells] reads them; None when the dialplan would refuse
    it for its shape (the tests' and the benchmark's reading of what the daemon said)."""
    decision = text.split(SEPARATOR, 1)[0]
    shape = _SHAPES.get(decision)
    if shape is None or not shape.fullmatch(text):
        return None
    return dict(zip(FIELDS[decision], text.split(SEPARATOR), strict=True))


# The caller's hangup handler reports the call's end here:
# AGI(${CC_AGI_URL}/call-end,UNIQUEID,ACCEPTED_AT,ENDED_AT,DIALSTATUS,HANGUPCAUSE,HANGUPSOURCE)
CALL_END_SCRIPT = "call-end"
# Set by the dialplan (inherited by the outbound channel): the handset's SIP Call-ID.
CALL_ID = "CC_CALL_ID"

# Prompts (Asterisk core sounds, English).
PROMPT_PIN = "agent-pass"  # "please enter your password ..."
PROMPT_PIN_WRONG = "auth-incorrect"  # "password incorrect, please enter your password ..."
PROMPT_CONNECTING = "pls-hold-while-try"
PROMPT_NUMBER = "vm-enter-num-to-call"  # two-stage: "please enter the number you wish to call"

# [cc-listen] asks the daemon before any ChanSpy: AGI(${CC_AGI_URL}/listen,${CC_LISTEN_ID}).
# The daemon sets LISTEN to "yes" and LISTEN_SPY to the channel to listen to, or neither.
LISTEN_SCRIPT = "listen"
LISTEN = "CC_LISTEN"
LISTEN_SPY = "CC_LISTEN_SPY"
