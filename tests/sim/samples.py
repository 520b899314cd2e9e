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
