"""Log and trace excerpts in the formats SIPp 3.8 wrote them in the scratch lab."""

from __future__ import annotations

CID = "ccsim-A1-01-073e919d-1"

HANDSET_LOG = f"""\
CCSIM|invite|{CID}|A1-01 447700900123|1795906635.000000|753600.000000
CCSIM|answered|{CID}||1795906635.000000|760000.000000
CCSIM|pin|{CID}|1.000000|1795906637.000000|260000.000000
CCSIM|pin|{CID}|2.000000|1795906642.000000|560000.000000
CCSIM|bye_sent|{CID}||1795906645.000000|870000.000000
CCSIM|end|{CID}||1795906645.000000|871000.000000
"""

# The X-CC-Call value comes with the header's leading space.
CALLED_LOG = f"""\
CCSIM|invite|7cd5776b-47da-4d39-9ffa-c82fc3613fdc| {CID}|1795906644.000000|775000.000000
CCSIM|answered|7cd5776b-47da-4d39-9ffa-c82fc3613fdc| {CID}|1795906644.000000|781000.000000
CCSIM|bye_received|7cd5776b-47da-4d39-9ffa-c82fc3613fdc| {CID}|1795906645.000000|871500.000000
CCSIM|end|7cd5776b-47da-4d39-9ffa-c82fc3613fdc| {CID}|1795906645.000000|875000.000000
"""


def _block(stamp: str, direction: str, message: str) -> str:
    return (
        f"----------------------------------------------- {stamp}\n"
        f"UDP message {direction} [{len(message)}] bytes:\n\n{message}\n\n"
    )


def trace(*statuses: int, call_id: str = CID) -> str:
    """A handset trace: INVITE, then for each status a response to INVITE CSeq 1, 2, ..."""
    out = [
        _block(
            "2026-11-28T22:57:15.753998Z",
            "sent",
            f"INVITE sip:447700900123@127.0.0.1:5260 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5280;branch=z9hG4bK-358-1-1\n"
            f"Call-ID: {call_id}\nCSeq: 1 INVITE\nContent-Length: 0",
        )
    ]
    reasons = {100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized", 403: "Forbidden"}
    for n, status in enumerate(statuses, start=1):
        out.append(
            _block(
                f"2026-11-28T22:57:15.{754491 + n:06d}Z",
                "received",
                f"SIP/2.0 {status} {reasons.get(status, 'Whatever')}\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:5280;received=127.0.0.1;branch=z9hG4bK-358-1-1\n"
                f"Call-ID: {call_id}\nCSeq: {1 if status == 401 else 2} INVITE\n"
                f"Server: simlab\nContent-Length:  0",
            )
        )
    out.append(
        _block(
            "2026-11-28T22:57:25.000000Z",
            "received",
            f"BYE sip:A1-01@127.0.0.1:5280 SIP/2.0\nCall-ID: {call_id}\nCSeq: 9 BYE\n"
            "Content-Length: 0",
        )
    )
    return "".join(out)


# Calls of the scratch lab with Dial(...,U(accept^s^1)) (one PIN try, DTMF of 200 ms): the
# handset's log, then the called party's. Accept: --hold 5 --called-party accept (Asterisk read
# the digit 1.02 s after the "dtmf" event and bridged; the handset hung up, the BYE reached the
# called party 2.4 ms later).
ACCEPT_CID = "ccsim-A1-01-646b7fc6-1"
ACCEPT_LOGS = (
    f"""\
CCSIM|invite|{ACCEPT_CID}|A1-01 447700900123|1795908527.000000|990876.000000
CCSIM|answered|{ACCEPT_CID}||1795908527.000000|996146.000000
CCSIM|pin|{ACCEPT_CID}|1.000000|1795908529.000000|502068.000000
CCSIM|bye_sent|{ACCEPT_CID}||1795908539.000000|278526.000000
CCSIM|end|{ACCEPT_CID}||1795908539.000000|279974.000000
""",
    f"""\
CCSIM|invite|df4089a6| {ACCEPT_CID}|1795908531.000000|712789.000000
CCSIM|answered|df4089a6| {ACCEPT_CID}|1795908531.000000|720499.000000
CCSIM|dtmf|df4089a6| {ACCEPT_CID}|1795908533.000000|226675.000000
CCSIM|bye_received|df4089a6| {ACCEPT_CID}|1795908539.000000|280887.000000
CCSIM|end|df4089a6| {ACCEPT_CID}|1795908539.000000|284527.000000
""",
)

# Decline: Asterisk read "2", hung up the called party 2 ms later, then the handset.
DECLINE_CID = "ccsim-A1-01-67627227-1"
DECLINE_LOGS = (
    f"""\
CCSIM|invite|{DECLINE_CID}|A1-01 447700900123|1795908554.000000|826714.000000
CCSIM|answered|{DECLINE_CID}||1795908554.000000|831706.000000
CCSIM|pin|{DECLINE_CID}|1.000000|1795908556.000000|337807.000000
CCSIM|bye_received|{DECLINE_CID}|42.000000|1795908561.000000|86427.000000
CCSIM|end|{DECLINE_CID}||1795908561.000000|87572.000000
""",
    f"""\
CCSIM|invite|d7ee95af| {DECLINE_CID}|1795908558.000000|547538.000000
CCSIM|answered|d7ee95af| {DECLINE_CID}|1795908558.000000|555312.000000
CCSIM|dtmf|d7ee95af| {DECLINE_CID}|1795908560.000000|63709.000000
CCSIM|bye_received|d7ee95af| {DECLINE_CID}|1795908561.000000|75488.000000
CCSIM|end|d7ee95af| {DECLINE_CID}|1795908561.000000|78821.000000
""",
)

# Ignore, --hold 20: Read() timed out after 10 s (plus the 0.44 s prompt); Asterisk hung up both.
IGNORE_CID = "ccsim-A1-01-c19c70ca-1"
IGNORE_LOGS = (
    f"""\
CCSIM|invite|{IGNORE_CID}|A1-01 447700900123|1795908572.000000|248570.000000
CCSIM|answered|{IGNORE_CID}||1795908572.000000|253496.000000
CCSIM|pin|{IGNORE_CID}|1.000000|1795908573.000000|760627.000000
CCSIM|bye_received|{IGNORE_CID}|42.000000|1795908586.000000|423511.000000
CCSIM|end|{IGNORE_CID}||1795908586.000000|424830.000000
""",
    f"""\
CCSIM|invite|6aefef61| {IGNORE_CID}|1795908575.000000|969374.000000
CCSIM|answered|6aefef61| {IGNORE_CID}|1795908575.000000|977055.000000
CCSIM|bye_received|6aefef61| {IGNORE_CID}|1795908586.000000|422322.000000
CCSIM|end|6aefef61| {IGNORE_CID}|1795908586.000000|425912.000000
""",
)

# Ignore, --hold 3: the handset hung up during the U() gosub; Asterisk kept the called party's
# call up until Read() timed out, after the harness had stopped it (no BYE, no end). The first
# two lines: a stray BYE Asterisk retransmitted for the previous run's called party.
IGNORE_SHORT_CID = "ccsim-A1-01-c9a68610-1"
IGNORE_SHORT_LOGS = (
    f"""\
CCSIM|invite|{IGNORE_SHORT_CID}|A1-01 447700900123|1795908700.000000|315064.000000
CCSIM|answered|{IGNORE_SHORT_CID}||1795908700.000000|320233.000000
CCSIM|pin|{IGNORE_SHORT_CID}|1.000000|1795908701.000000|826648.000000
CCSIM|bye_sent|{IGNORE_SHORT_CID}||1795908707.000000|100187.000000
CCSIM|end|{IGNORE_SHORT_CID}||1795908707.000000|101784.000000
""",
    f"""\
CCSIM|bye_received|985f5919||1795908702.000000|175836.000000
CCSIM|end|985f5919||1795908702.000000|179618.000000
CCSIM|invite|321b7a1b| {IGNORE_SHORT_CID}|1795908704.000000|36512.000000
CCSIM|answered|321b7a1b| {IGNORE_SHORT_CID}|1795908704.000000|43215.000000
""",
)
