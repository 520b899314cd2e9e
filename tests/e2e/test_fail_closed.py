"""Fail closed: whatever goes wrong with the daemon, no call is bridged."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import E2E, PORTS, kept_handset_log
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def fake_daemon(behave: Callable[[socket.socket], None]) -> Iterator[None]:
    """Something else on the daemon's FastAGI port, behaving badly."""
    server = socket.create_server(("127.0.0.1", PORTS["agi"]), reuse_port=False)
    server.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            threading.Thread(target=behave, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for c in conns:
            c.close()
        server.close()


def read_environment(conn: socket.socket) -> None:
    data = b""
    while b"\n\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def test_with_the_daemon_stopped_no_call_is_bridged(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    e2e.daemon.stop()
    try:
        call = e2e.call(cell, pin, "02079460000")
        assert call["outcome"] == "refused", call
        assert call["called_party_saw_invite"] is False
        assert call["reason"] is None  # nobody decided: the dialplan refused on its own
    finally:
        e2e.daemon.start()
    assert e2e.call(cell, pin, "02079460000", 1)["outcome"] == "connected"


def test_a_daemon_that_never_answers_cannot_bridge(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))

    def silent(conn: socket.socket) -> None:
        read_environment(conn)
        stop = threading.Event()
        stop.wait(60)  # says nothing; Asterisk's absolute timeout must end the call

    e2e.daemon.stop()
    try:
        with fake_daemon(silent):
            call = e2e.call(cell, pin, "02079460000", 1, "--timeout", "60")
        assert call["outcome"] == "refused", call
        assert call["called_party_saw_invite"] is False
    finally:
        e2e.daemon.start()


def test_a_confused_daemon_cannot_bridge(e2e: E2E) -> None:
    """Garbage, then a decision that is not exactly "allow": refused."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))

    def confused(conn: socket.socket) -> None:
        read_environment(conn)
        f = conn.makefile("rwb", buffering=0)
        for line in (
            b"NONSENSE COMMAND\n",
            b'SET VARIABLE CC_NUMBER "+442079460000"\n',
            b'SET VARIABLE CC_DECISION "allow please"\n',
        ):
            f.write(line)
            f.readline()
        conn.close()

    e2e.daemon.stop()
    try:
        with fake_daemon(confused):
            call = e2e.call(cell, pin, "02079460000", 1)
        assert call["outcome"] == "refused", call
        assert call["called_party_saw_invite"] is False
    finally:
        e2e.daemon.start()


def _silent_after_environment(conn: socket.socket) -> None:
    read_environment(conn)
    threading.Event().wait(90)


def _never_reads(conn: socket.socket) -> None:
    threading.Event().wait(90)  # accepts, reads nothing, says nothing


def _one_reply_then_half_a_line(conn: socket.socket) -> None:
    read_environment(conn)
    f = conn.makefile("rwb", buffering=0)
    f.write(b'SET VARIABLE CC_REASON "thinking"\n')
    f.readline()
    f.write(b"SET VARIABLE CC_DECISION al")  # and never the rest of the line
    threading.Event().wait(90)


def _answered_to_bye_s(call: dict[str, object]) -> float:
    """Seconds from Asterisk's answer to its BYE, as the handset's SIPp saw them."""
    handset = kept_handset_log(call)
    assert handset.answered_at is not None and handset.bye_received_at is not None, handset
    return handset.bye_received_at - handset.answered_at


@pytest.mark.parametrize(
    "behave",
    [_silent_after_environment, _never_reads, _one_reply_then_half_a_line],
    ids=["silent", "never-reads", "half-a-command"],
)
def test_a_stuck_daemon_is_refused_in_bounded_time_while_the_handset_stays(
    e2e: E2E, behave: Callable[[socket.socket], None]
) -> None:
    """The handset stays on the line for a minute; the refusal must come within the decision
    timeout (CC_DECIDE_TIMEOUT: session_timeout_s + 5 = 25 s here, from the answer) plus the
    refusal prompt (3.3 s). TIMEOUT(absolute) alone held such calls until the handset hung up
    (LAB-NOTES). Timed by the handset's SIPp, from Asterisk's answer to its BYE: the
    simulator's own start-up, seconds on a loaded machine, is not the daemon's to bound."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    decide_timeout = 20 + 5  # [agi] session_timeout_s in the suite's config, + 5
    e2e.daemon.stop()
    try:
        with fake_daemon(behave):
            call = e2e.call(cell, pin, "02079460000", 60, "--timeout", "90", "--keep")
        held = _answered_to_bye_s(call)
        assert call["outcome"] == "refused", call
        assert call["called_party_saw_invite"] is False
        assert call["ended_by"] == "network", call  # Asterisk's BYE, not the handset's
        assert held < decide_timeout + 10, f"refused {held:.1f} s after the answer: {call}"
    finally:
        e2e.daemon.start()
