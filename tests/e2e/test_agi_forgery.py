"""Forged FastAGI requests against the real lab: a local process reporting the end of a live
call, without the secret or with a wrong one, or from an address not allowed. Until now such
a report settled the call at once, freed the prisoner's one-call lock and let a second call
start while the first went on."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from callcontrol.domain.tariffs import Rounding, charge_pence
from tests.e2e.conftest import E2E, PORTS
from tests.e2e.test_billing import assert_books_balance, charges, settled
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

LONDON_RATE = 310  # hundredths of a penny a minute: the default uk_landline tariff


def forge_call_end(uniqueid: str, path_secret: str | None, source: str = "127.0.0.1") -> bytes:
    """What any local process can send to the FastAGI port: the hangup handler's request for
    ``uniqueid``, saying it was answered a second ago and has just ended. Returns whatever the
    daemon said before closing."""
    script = "call-end" if path_secret is None else f"{path_secret}/call-end"
    now = time.time()
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:{PORTS['agi']}/{script}",
        "agi_channel: PJSIP/forger-00000001",
        f"agi_uniqueid: {uniqueid}",
        "agi_context: cc-call-end",
        "agi_extension: s",
        f"agi_arg_1: {uniqueid}",
        f"agi_arg_2: {now - 1:.3f}",
        f"agi_arg_3: {now:.3f}",
        "agi_arg_4: ANSWER",
        "agi_arg_5: 16",
        "agi_arg_6: caller",
    ]
    with socket.create_connection(
        ("127.0.0.1", PORTS["agi"]), timeout=5, source_address=(source, 0)
    ) as conn:
        try:
            conn.sendall(("\n".join(lines) + "\n\n").encode())
            conn.settimeout(5)
            said = b""
            while chunk := conn.recv(4096):
                said += chunk
        except ConnectionError:  # closed at once, perhaps before the request was all sent
            said = b""
    return said


def open_call(e2e: E2E, prisoner: str) -> dict[str, object] | None:
    rows = e2e.sql(
        "SELECT c.id, c.uniqueid, c.ended_at, c.settled_at FROM calls c "
        "JOIN prisoners p ON p.id = c.prisoner_id WHERE p.prison_number = $1",
        prisoner,
    )
    return dict(rows[0]) if rows else None


def still_open(e2e: E2E, prisoner: str) -> None:
    call = open_call(e2e, prisoner)
    assert call is not None
    assert call["ended_at"] is None and call["settled_at"] is None, call
    assert charges(e2e, call["id"]) == []


def test_a_forged_call_end_cannot_settle_a_live_call_or_free_the_prisoner(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    hold = 30
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.update(e2e.call(cell, pin, "02079460000", hold, "--timeout", "90"))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while (call := open_call(e2e, prisoner)) is None and time.monotonic() < deadline:
            time.sleep(0.2)  # until the call is bridged
        assert call is not None, "the call was never bridged"
        uniqueid = str(call["uniqueid"])
        time.sleep(2)

        # Without the secret, and with a wrong one: nothing said back, nothing settled.
        assert forge_call_end(uniqueid, None) == b""
        assert forge_call_end(uniqueid, "0" * 64) == b""
        time.sleep(1.5)  # time enough for the daemon to have settled, had it believed them
        still_open(e2e, prisoner)
        # Nor with the real secret reversed, or the real one from an address not allowed.
        secret = e2e.lab.agi_secret
        assert forge_call_end(uniqueid, secret[::-1]) == b""
        assert forge_call_end(uniqueid, secret, source="127.0.0.2") == b""
        time.sleep(1.5)
        still_open(e2e, prisoner)
        # The prisoner's one-call lock still holds: a second call is refused.
        second = e2e.call(
            cell,
            pin,
            "02079460000",
            1,
            "--no-called-party",
            "--local-port",
            "5280",
            "--media-port",
            "6200",
        )
        assert (second["outcome"], second["reason"]) == ("refused", "call_in_progress"), second
    finally:
        thread.join(timeout=120)

    # The real call went on to its end, and was settled once, for its real length.
    assert result.get("outcome") == "connected", result
    s = settled(e2e, result)
    assert hold - 2 <= s["talk_seconds"] <= hold + 1, s
    assert s["ended_by"] == "caller", s
    assert s["charge_pence"] == charge_pence(LONDON_RATE, s["talk_seconds"], Rounding.PER_SECOND)
    assert charges(e2e, s["id"]) == [-s["charge_pence"]]
    assert_books_balance(e2e, prisoner)

    # The operator reads why, and never the secret.
    log = e2e.daemon.log.read_text(errors="replace")
    assert "refused request from 127.0.0.1:" in log and "no secret" in log
    assert "wrong secret" in log
    assert "refused connection from 127.0.0.2:" in log and "allowed_peers" in log
    assert secret not in log and secret[::-1] not in log
