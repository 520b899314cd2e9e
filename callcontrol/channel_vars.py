"""Every name shared between the dialplan (dialplan/*.conf) and the daemon, in one place."""

from __future__ import annotations

# The FastAGI script that decides a cell's call, run on the decision's Local channel
# ([cc-decide] in dialplan/cells.conf): AGI(${CC_AGI_URL}/cell-call,ENDPOINT_B64,DIALLED_B64,
# CALL_ID_B64,HANDSET_UNIQUEID,HANDSET_CHANNEL_B64) (adapters/agi/cell_call.py: call_args).
CELL_CALL_SCRIPT = "cell-call"
# Record only, from the hangup handler of a call the dialplan refused for what was dialled,
# with the same arguments: stored as refused (invalid_number); the daemon decides nothing.
CELL_REFUSED_SCRIPT = "cell-refused"

# Set by the daemon on the decision's Local channel, copied to the handset's channel (DECISION
# last); the handset's dialplan bridges only when DECISION is exactly ALLOW.
DECISION = "CC_DECISION"
ALLOW = "allow"
REFUSE = "refuse"
# The normalised number to dial (E.164 or a listed short code): digits with an optional "+".
NUMBER = "CC_NUMBER"
# The call's time limit in milliseconds (Dial's L()): the least of every limit and the credit.
LIMIT_MS = "CC_LIMIT_MS"
# "yes" when the call is to be recorded; anything else (a privileged call) is never recorded.
RECORD = "CC_RECORD"
# Why: the Reason value, for the dialplan's log line.
REASON = "CC_REASON"
# A balance enquiry ([site] balance_code keyed after the PIN instead of a number): DECISION is
# BALANCE, set last, after the figures, each a whole number (the dialplan checks them all and
# refuses anything else): BALANCE_NEGATIVE 1 when the available credit is below zero, else 0;
# BALANCE_POUNDS and BALANCE_PENCE (0-99) its size; MINUTES_LEFT the whole minutes left today.
# [cc-balance] in dialplan/cells.conf says them; nothing is dialled.
BALANCE = "balance"
BALANCE_NEGATIVE = "CC_BALANCE_NEGATIVE"
BALANCE_POUNDS = "CC_BALANCE_POUNDS"
BALANCE_PENCE = "CC_BALANCE_PENCE"
MINUTES_LEFT = "CC_MINUTES_LEFT"
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
