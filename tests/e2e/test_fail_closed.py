"""Fail closed: whatever goes wrong with the daemon, no call is bridged."""

from __future__ import annotations

import contextlib
import re
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
    """Garbage, then an answer that is not of an allow's shape: refused."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))

    def confused(conn: socket.socket) -> None:
        read_environment(conn)
        f = conn.makefile("rwb", buffering=0)
        for line in (
            b"NONSENSE COMMAND\n",
            b'SET VARIABLE CC_NUMBER "+442079460000"\n',
            b'SET VARIABLE CC_ANSWER "allow please"\n',
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


ALLOWED = "allow:approved_contact:+442079460000:1800000:yes"
# What something else on the daemon's port sets on the decision's Local channel, each a
# SET VARIABLE as written on the wire (so a value may hold res_agi's own escapes), in order.
# Every one but the control must be refused by the real dialplan, the called party never rung.
HOSTILE_ANSWERS = {
    "control": [("CC_ANSWER", ALLOWED)],
    "extra-field": [("CC_ANSWER", ALLOWED + ":yes")],
    "letter-in-number": [("CC_ANSWER", "allow:approved_contact:+4420794600O0:1800000:yes")],
    "limit-999": [("CC_ANSWER", "allow:approved_contact:+442079460000:999:yes")],
    "limit-leading-zero": [("CC_ANSWER", "allow:approved_contact:+442079460000:0999:yes")],
    "cut-short": [("CC_ANSWER", "allow:approved_contact:+442079460000:1800000")],
    # In two parts: each SET VARIABLE replaces the value; neither part is an answer.
    "two-parts": [
        ("CC_ANSWER", "allow:approved_contact:+442079460000"),
        ("CC_ANSWER", ":1800000:yes"),
    ],
    "separator-in-field": [("CC_ANSWER", "allow:approved_contact:+44207:9460000:1800000:yes")],
    "unknown-decision": [("CC_ANSWER", "ALLOW:approved_contact:+442079460000:1800000:yes")],
    "quote-comma-app": [
        ("CC_ANSWER", ALLOWED + '\\",1)|Dial(PJSIP/02079460000@pstn'),
    ],
    "empty": [("CC_ANSWER", "")],
    # The old protocol's five variables, and the snapshot's own name: none of them is read.
    "old-variables": [
        ("CC_REASON", "approved_contact"),
        ("CC_NUMBER", "+442079460000"),
        ("CC_LIMIT_MS", "1800000"),
        ("CC_RECORD", "yes"),
        ("CC_DECISION", "allow"),
        ("CC_DECIDED", ALLOWED),
    ],
}
NOOP_REFUSED = re.compile(r'NoOp\("PJSIP/([^"]+)", "callcontrol: refused: ([^"]*)"\)')


def _refusals_logged(e2e: E2E, cell: str, since: int) -> list[str]:
    """The reasons [cc-cell-refused] logged for this cell's channels since ``since``."""
    path = e2e.lab.inside(e2e.lab.log_dir) / "messages.log"
    text = path.read_bytes()[since:].decode(errors="replace")
    return [why for chan, why in NOOP_REFUSED.findall(text) if chan.startswith(f"{cell}-")]


@pytest.mark.parametrize("name", list(HOSTILE_ANSWERS))
def test_only_an_answer_of_an_allow_s_exact_shape_bridges(e2e: E2E, name: str) -> None:
    """Something else on the daemon's port answers the call in one SET VARIABLE (or several):
    the real dialplan checks the whole answer's shape before it cuts a field from it, and
    refuses everything but the control."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    sets = HOSTILE_ANSWERS[name]

    def lying(conn: socket.socket) -> None:
        read_environment(conn)
        f = conn.makefile("rwb", buffering=0)
        for var, value in sets:
            f.write(f'SET VARIABLE {var} "{value}"\n'.encode())
            f.readline()
        conn.close()

    log = e2e.lab.inside(e2e.lab.log_dir) / "messages.log"
    since = log.stat().st_size if log.exists() else 0
    e2e.daemon.stop()
    try:
        with fake_daemon(lying):
            call = e2e.call(cell, pin, "02079460000", 1)
    finally:
        e2e.daemon.start()
    if name == "control":
        assert call["outcome"] == "connected", call
        assert call["called_party_saw_invite"] is True, call
        return
    assert call["outcome"] == "refused", call
    assert call["called_party_saw_invite"] is False, call
    # The log says why: nothing set, or an answer of no known shape.
    why = "no decision" if name in ("empty", "old-variables") else "malformed answer"
    logged = _refusals_logged(e2e, cell, since)
    assert len(logged) == 1 and logged[0].startswith(why), logged


def _silent_after_environment(conn: socket.socket) -> None:
    read_environment(conn)
    threading.Event().wait(90)


def _never_reads(conn: socket.socket) -> None:
    threading.Event().wait(90)  # accepts, reads nothing, says nothing


def _one_reply_then_half_a_line(conn: socket.socket) -> None:
    read_environment(conn)
    f = conn.makefile("rwb", buffering=0)
    f.write(b'SET VARIABLE CC_ANSWER "refuse:thinking"\n')
    f.readline()
    f.write(b"SET VARIABLE CC_ANSWER al")  # and never the rest of the line
    threading.Event().wait(90)


def _answers_then_silent(conn: socket.socket) -> None:
    read_environment(conn)
    f = conn.makefile("rwb", buffering=0)
    f.write(b"ANSWER\n")  # as the daemon does before the PIN prompt
    f.readline()
    threading.Event().wait(90)


def _invite_to_bye_s(call: dict[str, object]) -> float:
    """Seconds from the handset's INVITE to Asterisk's BYE, as the handset's SIPp saw them."""
    handset = kept_handset_log(call)
    assert handset.invite_at is not None and handset.bye_received_at is not None, handset
    return handset.bye_received_at - handset.invite_at


# cells.conf: the daemon must answer within Dial's 10 s, then decide within CC_DECIDE_TIMEOUT
# ([agi] session_timeout_s + 5 = 25 s in the suite's config) from its answer. Then the refusal
# prompt (3.3 s). The slack is for a loaded machine.
ANSWER_TIMEOUT_S = 10
DECIDE_TIMEOUT_S = 20 + 5
REFUSAL_PROMPT_S = 3.3
SLACK_S = 7


@pytest.mark.parametrize(
    ("behave", "timer_s"),
    [
        (_silent_after_environment, ANSWER_TIMEOUT_S),
        (_never_reads, ANSWER_TIMEOUT_S),
        (_one_reply_then_half_a_line, ANSWER_TIMEOUT_S),
        (_answers_then_silent, DECIDE_TIMEOUT_S),
    ],
    ids=["silent", "never-reads", "half-a-command", "answers-then-silent"],
)
def test_a_stuck_daemon_is_refused_in_bounded_time_while_the_handset_stays(
    e2e: E2E, behave: Callable[[socket.socket], None], timer_s: float
) -> None:
    """The handset stays on the line for a minute; the refusal must come when the timer that
    applies runs out, plus the refusal prompt: Dial's 10 s for a daemon that never answers,
    CC_DECIDE_TIMEOUT from the answer for one that answers and then goes quiet. TIMEOUT(absolute)
    alone held such calls until the handset hung up (LAB-NOTES). Timed by the handset's SIPp,
    from its INVITE to Asterisk's BYE: the simulator's own start-up, seconds on a loaded
    machine, is not the daemon's to bound."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    e2e.daemon.stop()
    try:
        with fake_daemon(behave):
            call = e2e.call(cell, pin, "02079460000", 60, "--timeout", "90", "--keep")
        held = _invite_to_bye_s(call)
        assert call["outcome"] == "refused", call
        assert call["called_party_saw_invite"] is False
        assert call["ended_by"] == "network", call  # Asterisk's BYE, not the handset's
        # Longer than the timer (it was that timer that ended it), never much longer.
        limit = timer_s + REFUSAL_PROMPT_S + SLACK_S
        assert timer_s < held < limit, f"refused {held:.1f} s after the INVITE: {call}"
    finally:
        e2e.daemon.start()
