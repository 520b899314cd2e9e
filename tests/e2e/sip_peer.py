"""A scripted SIP handset (UDP) for what a real handset would not send.

It authenticates with digest as the cell's endpoint, sends an INVITE whose Request-URI user part
and Call-ID are exactly what the test gives (percent escapes, commas, hundreds of characters),
answers Asterisk's BYE, and can key digits as SIP INFO (application/dtmf-relay, which Asterisk
accepts on the cells' rfc4733 endpoints). SIPp cannot put such a user part into its scenario
file safely; the rest of the suite uses SIPp.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import time
from dataclasses import dataclass, field

SDP = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio {port} RTP/AVP 0 96\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)


@dataclass
class Message:
    first: str
    headers: dict[str, str]
    body: str

    @property
    def status(self) -> int | None:
        parts = self.first.split(" ", 2)
        return int(parts[1]) if self.first.startswith("SIP/2.0") else None

    @property
    def method(self) -> str | None:
        return None if self.first.startswith("SIP/2.0") else self.first.split(" ", 1)[0]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def parse(data: bytes) -> Message:
    text = data.decode("utf-8", errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Message(lines[0], headers, body)


@dataclass
class CallLog:
    """What the handset saw of its call."""

    statuses: list[int] = field(default_factory=list)
    answered_at: float | None = None
    bye_at: float | None = None  # Asterisk's BYE (the refusal's end)
    started_at: float = 0.0


class SipHandset:
    def __init__(self, cell: str, password: str, asterisk_port: int) -> None:
        self.cell = cell
        self.password = password
        self.port = asterisk_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.lport = self.sock.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, ignores
        self.rtp.bind(("127.0.0.1", 0))
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.to_tag = ""
        self.remote_target = ""

    def close(self) -> None:
        self.sock.close()
        self.rtp.close()

    # --- sending ---------------------------------------------------------------------------
    def _send(self, text: str) -> None:
        self.sock.sendto(text.encode("utf-8"), ("127.0.0.1", self.port))

    def _request(
        self,
        method: str,
        uri: str,
        call_id: str,
        cseq: int,
        *,
        to: str,
        extra: str = "",
        body: str = "",
        ctype: str = "",
        branch: str | None = None,
        contact: bool = True,
    ) -> None:
        branch = branch or "z9hG4bK" + secrets.token_hex(8)
        text = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.lport};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{self.cell}@127.0.0.1>;tag={self.tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            + (f"Contact: <sip:{self.cell}@127.0.0.1:{self.lport}>\r\n" if contact else "")
            + extra
            + (f"Content-Type: {ctype}\r\n" if ctype else "")
            + f"Content-Length: {len(body.encode())}\r\n\r\n"
            + body
        )
        self._send(text)

    def _recv(self, until: float) -> Message | None:
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                return None
            msg = parse(data)
            if msg.method in ("BYE", "INFO", "OPTIONS", "UPDATE", "NOTIFY") or (
                msg.method == "INVITE"
            ):
                self._ok(msg)
            return msg

    def _ok(self, req: Message) -> None:
        text = (
            "SIP/2.0 200 OK\r\n"
            f"Via: {req.header('via')}\r\n"
            f"From: {req.header('from')}\r\n"
            f"To: {req.header('to')}\r\n"
            f"Call-ID: {req.header('call-id')}\r\n"
            f"CSeq: {req.header('cseq')}\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        self._send(text)

    def _digest(self, challenge: str, method: str, uri: str) -> str:
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        realm, nonce = params["realm"], params["nonce"]
        ha1 = hashlib.md5(f"{self.cell}:{realm}:{self.password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
        parts = [
            f'username="{self.cell}"',
            f'realm="{realm}"',
            f'nonce="{nonce}"',
            f'uri="{uri}"',
            "algorithm=MD5",
        ]
        if "auth" in params.get("qop", ""):
            cnonce, nc = secrets.token_hex(8), "00000001"
            response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
            parts += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        parts.append(f'response="{response}"')
        if "opaque" in params:
            parts.append(f'opaque="{params["opaque"]}"')
        return "Digest " + ", ".join(parts)

    # --- registration ----------------------------------------------------------------------
    def register(self, aor: str, *, contact_port: int | None = None, expires: int = 60) -> int:
        """REGISTER the cell's credentials for AOR ``aor`` (its own, or another's), with a
        Contact on ``contact_port`` (default: this socket); the final status."""
        uri = f"sip:127.0.0.1:{self.port}"
        to = f"<sip:{aor}@127.0.0.1>"
        call_id = f"reg-{secrets.token_hex(6)}"
        port = contact_port or self.lport
        extra = f"Contact: <sip:{self.cell}@127.0.0.1:{port}>\r\nExpires: {expires}\r\n"
        auth = ""
        for cseq in (1, 2):
            self._request("REGISTER", uri, call_id, cseq, to=to, extra=auth + extra, contact=False)
            deadline = time.monotonic() + 10
            while True:
                msg = self._recv(deadline)
                if msg is None:
                    raise TimeoutError("no final response to REGISTER")
                if msg.status and msg.status >= 200:
                    break
            if msg.status != 401 or auth:
                return msg.status
            digest = self._digest(msg.header("www-authenticate"), "REGISTER", uri)
            auth = f"Authorization: {digest}\r\n"
        raise AssertionError("unreachable")

    # --- the call --------------------------------------------------------------------------
    def call(
        self,
        user: str,
        call_id: str,
        *,
        keys: str = "",
        key_after_s: float = 1.5,
        stay_s: float = 20.0,
    ) -> CallLog:
        """INVITE sip:USER@asterisk (``user`` exactly as given, escapes and all) with this
        Call-ID; key ``keys`` as INFO ``key_after_s`` after the answer; stay on the line until
        Asterisk's BYE or ``stay_s`` after the answer (then hang up). Returns what it saw."""
        log = CallLog(started_at=time.monotonic())
        uri = f"sip:{user}@127.0.0.1:{self.port}"
        to = f"<{uri}>"
        sdp = SDP.format(port=self.rtp.getsockname()[1])
        self.cseq = 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        self._request(
            "INVITE", uri, call_id, 1, to=to, body=sdp, ctype="application/sdp", branch=branch
        )
        deadline = time.monotonic() + 10
        auth = ""
        while True:
            msg = self._recv(deadline)
            if msg is None:
                raise TimeoutError("no final response to the first INVITE")
            if msg.status and msg.status >= 200:
                break
        log.statuses.append(msg.status or 0)
        if msg.status in (401, 407):
            self._request("ACK", uri, call_id, 1, to=msg.header("to"), branch=branch)
            challenge = msg.header("www-authenticate") or msg.header("proxy-authenticate")
            hname = "Authorization" if msg.status == 401 else "Proxy-Authorization"
            auth = f"{hname}: {self._digest(challenge, 'INVITE', uri)}\r\n"
            self.cseq = 2
            branch = "z9hG4bK" + secrets.token_hex(8)
            self._request(
                "INVITE",
                uri,
                call_id,
                2,
                to=to,
                extra=auth,
                body=sdp,
                ctype="application/sdp",
                branch=branch,
            )
            deadline = time.monotonic() + 10
            while True:
                msg = self._recv(deadline)
                if msg is None:
                    raise TimeoutError("no final response to the authenticated INVITE")
                if msg.method == "BYE":  # cannot come before the 200, but be safe
                    continue
                if msg.status and msg.status >= 200:
                    break
            log.statuses.append(msg.status or 0)
        if msg.status != 200:
            self._request("ACK", uri, call_id, self.cseq, to=msg.header("to"), branch=branch)
            return log
        log.answered_at = time.monotonic()
        to_header = msg.header("to")
        contact = re.search(r"<([^>]+)>", msg.header("contact"))
        target = contact.group(1) if contact else uri
        self._request("ACK", target, call_id, self.cseq, to=to_header)
        end = log.answered_at + stay_s
        key_at = log.answered_at + key_after_s
        pending = list(keys)
        while time.monotonic() < end:
            if pending and time.monotonic() >= key_at:
                self.cseq += 1
                digit = pending.pop(0)
                self._request(
                    "INFO",
                    target,
                    call_id,
                    self.cseq,
                    to=to_header,
                    body=f"Signal={digit}\r\nDuration=160\r\n",
                    ctype="application/dtmf-relay",
                )
                key_at = time.monotonic() + 0.25
            wait = min(end, key_at if pending else end)
            got = self._recv(max(wait, time.monotonic() + 0.01))
            if got is not None and got.method == "BYE":
                log.bye_at = time.monotonic()
                return log
        self.cseq += 1
        self._request("BYE", target, call_id, self.cseq, to=to_header)
        self._recv(time.monotonic() + 2)
        return log
