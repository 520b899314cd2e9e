"""What a handset dials reaches the records intact, and what is not a number is refused by the
dialplan itself (issue 9, part 2): hostile Request-URIs from an authenticated handset, against
the real lab. A scripted SIP peer sends them (tests/e2e/sip_peer.py); a UDP socket on the trunk's
port shows that no INVITE ever reaches a called party."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from callcontrol.config import load_settings
from callcontrol_lab.simulator.records import cell_password
from tests.e2e.conftest import E2E, PORTS
from tests.e2e.sip_peer import SipHandset
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

_serial = itertools.count(1)


class Trunk:
    """The trunk's port: every datagram that reaches it (a bridged call would send an INVITE)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", PORTS["pstn"]))
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.received.append(data)

    @property
    def invites(self) -> list[bytes]:
        return [d for d in self.received if d.startswith(b"INVITE ")]

    @contextlib.contextmanager
    def running(self) -> Iterator[Trunk]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.sock.close()


def handset(e2e: E2E, cell: str) -> SipHandset:
    password = asyncio.run(cell_password(load_settings(e2e.config), cell))
    assert password, f"no SIP password for {cell}"
    return SipHandset(cell, password, PORTS["pjsip"])


def stored(e2e: E2E, call_id: str, within: float = 10.0) -> dict[str, object]:
    """The one decision stored for this Call-ID (the record-only route runs at the hangup)."""
    deadline = time.monotonic() + within
    while True:
        rows = e2e.sql(
            "SELECT outcome, reason, dialled, sip_call_id, handset, uniqueid "
            "FROM call_decisions WHERE sip_call_id = $1 ORDER BY id",
            call_id,
        )
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(rows) == 1, f"expected one decision for {call_id!r}, got {rows}"
    return dict(rows[0])


# (Request-URI user part as sent, what is stored as dialled: the user part as PJSIP prints it)
HOSTILE = [
    ("02079460000%0A", "02079460000%0a"),
    ("0207946%0D0000", "0207946%0d0000"),
    ("0207946%000000", "0207946%000000"),
    ("02079460123,30,D(1)", "02079460123,30,D(1)"),
    ("02079460000%22%2C1", "02079460000%22,1"),
    # "h", "T" and anything else starting with a letter never reach the dialplan (404):
    # tests/e2e/test_softphones.py
    ("0h", "0h"),
    ("0" * 33, "0" * 33),
]


@pytest.mark.parametrize(("user", "dialled"), HOSTILE, ids=[u[:24] for u, _ in HOSTILE])
def test_what_is_not_a_number_is_refused_by_the_dialplan_and_stored(
    e2e: E2E, user: str, dialled: str
) -> None:
    cell, _, _ = provision(e2e, (LONDON, "approved"))
    call_id = f"hostile-{next(_serial)}-a,b;c@cell"  # a comma-bearing Call-ID, kept whole
    phone = handset(e2e, cell)
    try:
        with Trunk().running() as trunk:
            log = phone.call(user, call_id, stay_s=20)
            time.sleep(0.5)
        assert log.bye_at is not None, f"not refused by Asterisk: {log}"
        # Refused at once: the refusal is played (about 2 s), never a PIN prompt and no daemon.
        assert log.answered_at is not None and log.bye_at - log.answered_at < 8, log
        assert trunk.invites == []
    finally:
        phone.close()
    d = stored(e2e, call_id)
    assert (d["outcome"], d["reason"]) == ("refuse", "invalid_number"), d
    assert d["dialled"] == dialled[:64]
    assert d["sip_call_id"] == call_id and d["handset"] == cell


def test_hundreds_of_characters_are_refused_and_kept_to_the_column(e2e: E2E) -> None:
    cell, _, _ = provision(e2e, (LONDON, "approved"))
    call_id = f"long-{next(_serial)}@cell"
    user = "02079460000" + "1234567890" * 40  # 411 characters: Asterisk's EXTEN holds 79
    phone = handset(e2e, cell)
    try:
        with Trunk().running() as trunk:
            log = phone.call(user, call_id, stay_s=20)
            time.sleep(0.5)
        assert log.bye_at is not None, log
        assert trunk.invites == []
    finally:
        phone.close()
    d = stored(e2e, call_id)
    assert (d["outcome"], d["reason"]) == ("refuse", "invalid_number"), d
    assert d["dialled"] == user[:64]  # call_decisions.dialled is 64 characters long


def test_a_comma_bearing_call_id_reaches_the_daemon_whole(e2e: E2E) -> None:
    """A real number, a Call-ID full of commas: the daemon decides on exactly what was sent."""
    cell, _, pin = provision(e2e)  # no contacts: the number is refused as not approved
    call_id = f"commas-{next(_serial)},30,D(1)@cell"
    phone = handset(e2e, cell)
    try:
        with Trunk().running() as trunk:
            log = phone.call("02079460123", call_id, keys=pin + "#", stay_s=25)
            time.sleep(0.5)
        assert log.bye_at is not None, log
        assert trunk.invites == []
    finally:
        phone.close()
    d = stored(e2e, call_id)
    assert (d["outcome"], d["reason"]) == ("refuse", "not_approved"), d
    assert d["dialled"] == "02079460123" and d["sip_call_id"] == call_id
