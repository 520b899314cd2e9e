"""One simulated call: a handset SIPp calling through Asterisk, and a called-party SIPp.

``place_call`` starts the called party (unless told there is one already), starts the handset,
waits for both, stops them, reads their logs and returns a ``CallResult``. It is what
``callcontrol-sim call`` runs, and what tests and the load runner can await in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import secrets
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callcontrol.config import Settings
from callcontrol_lab.simulator import logs
from callcontrol_lab.simulator.sipp import (
    SIM_DIR,
    RunDir,
    SimError,
    called_party_command,
    find_sipp,
    handset_command,
    stage_scenario,
)

# answer: answers, keys nothing (dialplans that do not ask the called party to accept).
# accept, decline: answers, then keys the accept or the decline digit; ignore: answers, keys
# nothing and waits for Asterisk to give up (dialplans with Dial's U() acceptance gosub).
CALLED_PARTY_MODES = ("answer", "busy", "noanswer", "accept", "decline", "ignore")
KEYING_MODES = ("accept", "decline")
ACCEPTANCE_MODES = ("accept", "decline", "ignore")
DTMF_DIGITS = "0123456789*#"

# How long the called party may take to end its call after the handset's SIPp has finished
# (Asterisk's BYE or CANCEL follows the handset's at once, except while Dial's U() gosub runs
# on the called channel: then the called party keeps its call until the gosub ends).
CALLED_PARTY_GRACE_S = 3.0
# How long to look for the daemon's decision, which it writes just before the hangup.
REASON_WAIT_S = 2.0
# A dialplan that refuses the called party's digit hangs the called channel up at once (measured:
# 2 ms after Read() returned). A call still up this long after the digit was keyed was bridged.
ACCEPT_SETTLE_S = 1.0
# When the handset hangs up, a bridged called party gets Asterisk's BYE within milliseconds;
# during the U() gosub it gets none until the gosub ends (measured: after Read()'s timeout).
BRIDGED_FOLLOW_S = 0.5


@dataclass
class CallResult:
    """What happened to one simulated call (printed as one JSON line by the CLI)."""

    outcome: str  # connected | not_accepted | refused | failed
    reason: str | None  # the daemon's reason (call_decisions.reason), None if unknown
    decision: str | None  # the daemon's decision: allow | refuse, None if unknown
    setup_ms: float | None  # handset's INVITE -> called party's 200 OK (answered calls)
    post_pin_ms: float | None  # last PIN keyed -> called party's INVITE (daemon + Asterisk)
    talk_s: float | None  # seconds bridged: from the accept (accept mode) or the 200 OK to the BYE
    sip_call_id: str
    sip_status: int | None  # the final SIP status the handset got for its INVITE
    called_party_saw_invite: bool | None  # None when no called party was observed
    ended_by: str | None  # handset (its BYE) | network (Asterisk's BYE) | None
    called_party_mode: str | None
    cell: str
    number: str
    pin_tries: int
    handset_exit: int | None  # SIPp's exit status: 0 all calls ok, 1 a call failed
    called_party_exit: int | None
    errors: list[str] = field(default_factory=list)  # SIPp's complaints, first lines
    run_dir: str | None = None  # kept on request, for reading the SIPp logs
    accepted_at_ms: float | None = None  # called party's 200 OK -> its accept digit keyed
    answered_talk_s: float | None = None  # called party's 200 OK -> the first BYE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # The timing fields together (they come last in the dataclass only for its defaults).
        order = list(d)
        for name in ("answered_talk_s", "accepted_at_ms"):
            order.remove(name)
            order.insert(order.index("talk_s") + 1, name)
        return {k: d[k] for k in order}


@dataclass(frozen=True)
class Endpoints:
    """Where everything listens (all on loopback in the lab)."""

    host: str = "127.0.0.1"  # Asterisk
    port: int = 5060  # Asterisk's PJSIP UDP port
    local_ip: str = "127.0.0.1"  # the SIPp instances
    local_port: int = 5080  # the handset's SIP port
    media_port: int = 6000  # the handset's first RTP port
    called_party_port: int = 5070
    called_party_media_port: int = 16000


@dataclass(frozen=True)
class CalledPartyPlan:
    """What our called party does (called_party.xml's -key values)."""

    mode: str = "answer"
    ring_ms: int = 0
    hangup_ms: int = 0  # 0: it waits for the BYE; else it hangs up this long after answering
    accept_ms: int = 1500  # accept, decline: after the 200 OK, before keying the digit
    accept_digit: str = "1"
    decline_digit: str = "2"
    dtmf_ms: int = 200

    @property
    def digit(self) -> str | None:
        """The digit it keys: the accept or decline digit, None in the other modes."""
        return {"accept": self.accept_digit, "decline": self.decline_digit}.get(self.mode)

    def keying_wait_ms(self) -> int:
        """From its 200 OK until its digit is complete (0 when it keys none)."""
        digit = self.digit
        return self.accept_ms + logs.dtmf_end_ms(digit, self.dtmf_ms) if digit else 0

    def validate(self) -> None:
        """ValueError if the called party cannot do this."""
        if self.mode not in CALLED_PARTY_MODES:
            raise ValueError(f"called party mode must be one of {', '.join(CALLED_PARTY_MODES)}")
        for name, digit in (("accept", self.accept_digit), ("decline", self.decline_digit)):
            if len(digit) != 1 or digit not in DTMF_DIGITS:
                raise ValueError(f"the {name} digit must be one of {DTMF_DIGITS}, not {digit!r}")
        if self.accept_digit == self.decline_digit:
            raise ValueError("the decline digit must differ from the accept digit")
        if not 50 <= self.dtmf_ms <= 2000:
            raise ValueError("DTMF tone length must be 50 to 2000 ms (SIPp's limits)")
        for name, value in (
            ("ring time", self.ring_ms),
            ("hangup time", self.hangup_ms),
            ("accept pause", self.accept_ms),
        ):
            if value < 0:
                raise ValueError(f"the called party's {name} cannot be negative")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", text)[:40] or "cell"


def call_id_prefix(cell: str) -> str:
    """A recognisable, unique Call-ID prefix for the handset's SIPp (call N adds N)."""
    return f"ccsim-{_safe(cell)}-{secrets.token_hex(4)}-"


def _port_in_use(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise SimError(f"cannot check UDP port {ip}:{port}: {e.strerror}") from None
    return False


def _output_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


async def _start(cmd: list[str], out: Path) -> asyncio.subprocess.Process:
    """Start a SIPp with its screen output going to ``out``."""
    fd = _output_file(out)
    try:
        return await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=asyncio.subprocess.STDOUT
        )
    except OSError as e:
        raise SimError(f"cannot run {cmd[0]}: {e.strerror}") from None
    finally:
        os.close(fd)


async def _wait(proc: asyncio.subprocess.Process, limit_s: float) -> int | None:
    """The exit status, or None if the process is still running after ``limit_s``."""
    try:
        return await asyncio.wait_for(proc.wait(), limit_s)
    except TimeoutError:
        return None


async def _stop(proc: asyncio.subprocess.Process) -> int | None:
    """Stop a SIPp: SIGUSR1 (SIPp 3.8 then ends its calls with a BYE or CANCEL, so that no call
    is left on Asterisk, and exits), then SIGINT, then SIGKILL."""
    if proc.returncode is not None:
        return proc.returncode
    for sig, wait in ((signal.SIGUSR1, 2.0), (signal.SIGINT, 2.0), (signal.SIGKILL, 3.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        code = await _wait(proc, wait)
        if code is not None:
            return code
    return proc.returncode


async def _until_listening(
    proc: asyncio.subprocess.Process, ip: str, port: int, out: Path, limit_s: float = 10.0
) -> None:
    """Wait until the called party's SIPp has bound its port (ours can no longer bind it)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise SimError(f"the called party's SIPp exited at once: {_tail(out)}")
        if _port_in_use(ip, port):
            return
        await asyncio.sleep(0.05)
    raise SimError(f"the called party's SIPp did not open {ip}:{port} in {limit_s:.0f} s")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(path: Path) -> str:
    text = " ".join(_read(path).split())
    return text[-300:] if text else "(no output)"


def _errors(path: Path) -> list[str]:
    """The first line of each event in a SIPp error log."""
    out = []
    for line in _read(path).splitlines():
        m = re.match(r"^\d{4}-\d\d-\d\d\s+[\d:.]+\s+[\d.]+:\s*(.*)$", line)
        if m:
            out.append(m.group(1)[:200])
    return out


@dataclass
class _Observed:
    handset: logs.HandsetLog | None
    status: int | None
    any_response: bool
    called: logs.CalledPartyLog | None
    called_observed: bool


def observe(
    run: RunDir, call_id: str, called_party_log: Path | None, own_called_party: bool
) -> _Observed:
    """Read the logs of one call."""
    handset = logs.handset_calls(logs.parse_events(_read(run.h("handset_logs.log")))).get(call_id)
    trace = logs.parse_trace(_read(run.h("handset_messages.log")))
    status = logs.final_invite_status(trace, call_id)
    called = None
    observed = own_called_party or called_party_log is not None
    if observed:
        path = called_party_log or run.h("called_party_logs.log")
        calls = logs.called_party_calls(logs.parse_events(_read(path)))
        # Only calls that began with an INVITE: a called party that starts just after another
        # one stopped may get the BYEs Asterisk still retransmits for that one's calls.
        calls = [c for c in calls if c.invite_at is not None]
        called = next((c for c in calls if c.x_cc_call == call_id), None)
        if called is None and own_called_party and len(calls) == 1 and not calls[0].x_cc_call:
            # Our own called party got one call without X-CC-Call: the dialplan lacks the
            # header, but the call is surely ours.
            called = calls[0]
    return _Observed(handset, status, logs.got_response(trace), called, observed)


@dataclass(frozen=True)
class Verdict:
    """What the logs of one call say (see CallResult for each field)."""

    outcome: str
    setup_ms: float | None
    post_pin_ms: float | None
    talk_s: float | None
    answered_talk_s: float | None
    accepted_at_ms: float | None
    ended_by: str | None


def keyed_at(called: logs.CalledPartyLog, dtmf_ms: int) -> float | None:
    """When the called party's digit was complete (Asterisk reads it then), or None."""
    if called.dtmf_at is None:
        return None
    return called.dtmf_at + logs.dtmf_end_ms("1", dtmf_ms) / 1000


def bridged(
    mode: str, handset: logs.HandsetLog | None, called: logs.CalledPartyLog, key_end: float | None
) -> bool:
    """Whether an answered call of an acceptance mode (accept, decline, ignore) was bridged.

    The called party cannot hear the bridge, so this rests on when its call ended:
    * the handset hung up and Asterisk's BYE reached the called party at once (while Dial's
      U() gosub runs, the handset's hangup does not reach it: it waits for the gosub's end);
    * accept, decline: the call outlived the digit by ACCEPT_SETTLE_S (a dialplan that refuses
      the digit hangs the called channel up at once).
    Anything else is not bridged: for accept, a call that ended before its digit was complete.
    """
    end = called.talk_end_at
    if end is None:  # stopped by us without a BYE: nothing shows a bridge
        return False
    hung_up = handset.bye_sent_at if handset is not None else None
    followed = (
        hung_up is not None
        and called.answered_at is not None
        and hung_up > called.answered_at
        and called.bye_received_at is not None
        and called.bye_received_at == end
        and 0 <= end - hung_up <= BRIDGED_FOLLOW_S
    )
    if mode == "ignore" or (mode == "decline" and key_end is None):
        return followed
    if key_end is None or end <= key_end:  # accept: no digit, or the call ended while keying
        return False
    return followed or end > key_end + ACCEPT_SETTLE_S


def judge(
    call: logs.HandsetCall,
    call_id: str,
    seen: _Observed,
    decision: str | None,
    mode: str | None = None,
    dtmf_ms: int | None = None,
) -> Verdict:
    """The verdict on one call from what was observed.

    ``mode``: what the called party did (CALLED_PARTY_MODES; None: unknown, as answer).
    ``dtmf_ms``: its DTMF tone length (default: the handset's).
    outcome: connected (answered, and in the acceptance modes bridged: see ``bridged``),
    not_accepted (answered in accept, decline or ignore mode, never bridged), refused (the call
    reached Asterisk, the called party never answered), failed (SIP level).
    """
    h, c = seen.handset, seen.called
    ended_by = None
    if h is not None:
        if h.bye_received_at is not None:
            ended_by = "network"
        elif h.bye_sent_at is not None:
            ended_by = "handset"
    answered = c if c is not None and c.answered_at is not None else None
    key_end = None
    if answered is not None and mode in KEYING_MODES:
        key_end = keyed_at(answered, call.dtmf_ms if dtmf_ms is None else dtmf_ms)
    accepting = mode in ACCEPTANCE_MODES
    if seen.called_observed:
        if answered is not None:
            ok = mode not in ACCEPTANCE_MODES or bridged(mode, h, answered, key_end)
            outcome = "connected" if ok else "not_accepted"
        elif seen.status == 200 or decision == "refuse":
            outcome = "refused"
        else:
            outcome = "failed"
    else:
        # Nobody watched the called party: trust the daemon's decision.
        if seen.status == 200 and decision == "allow":
            outcome = "connected"
        elif seen.status == 200 or decision == "refuse":
            outcome = "refused"
        else:
            outcome = "failed"
    setup_ms = post_pin_ms = accepted_at_ms = None
    talk_s: float | None = None
    answered_talk_s: float | None = None
    if seen.called_observed:
        answered_talk_s = round(c.talk_s, 3) if c is not None else 0.0
        talk_s = answered_talk_s
        if accepting and outcome != "connected":
            talk_s = 0.0
        elif c is not None and mode == "accept" and key_end is not None:
            # Bridged when the digit was read. (decline or ignore connected: the dialplan did
            # not ask, the bridge began at the answer.)
            end = c.talk_end_at
            talk_s = round(max(0.0, end - key_end), 3) if end is not None else 0.0
    if c is not None and c.answered_at is not None:
        if h is not None and h.invite_at is not None:
            setup_ms = round((c.answered_at - h.invite_at) * 1000, 1)
        end = c.talk_end_at
        if mode == "accept" and key_end is not None and (end is None or end > key_end):
            accepted_at_ms = round((key_end - c.answered_at) * 1000, 1)
    if c is not None and c.invite_at is not None and h is not None and h.pin_at:
        last_try = len(h.pin_at)
        pin = logs.keyed(call.pin_for_try(last_try))
        keyed = h.pin_at[-1] + logs.dtmf_end_ms(pin, call.dtmf_ms) / 1000
        post_pin_ms = round((c.invite_at - keyed) * 1000, 1)
    return Verdict(
        outcome, setup_ms, post_pin_ms, talk_s, answered_talk_s, accepted_at_ms, ended_by
    )


# --- the database (optional) ---


def _db_url(settings: Settings) -> str | None:
    """The database URL, or None when it is a SQLite file that does not exist."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(settings.database.url)
    except Exception:
        return None
    drivers = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }
    if u.drivername in drivers:
        u = u.set(drivername=drivers[u.drivername])
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or db.startswith("file:"):
            return None
        path = settings.path(db)
        if not path.exists():  # never create a database file by looking
            return None
        u = u.set(database=str(path))
    return u.render_as_string(hide_password=False)


async def _query(settings: Settings, sql: str, params: dict[str, Any]) -> list[Any] | None:
    """The first row of ``sql``, None when there is no row or no usable database."""
    url = _db_url(settings)
    if url is None:
        return None
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    try:
        engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 5})
    except Exception:
        return None
    try:
        async with asyncio.timeout(10):
            async with engine.connect() as conn:
                row = (await conn.execute(text(sql), params)).first()
                return list(row) if row is not None else None
    except Exception:
        return None
    finally:
        await engine.dispose()


async def cell_password(settings: Settings, cell: str) -> str | None:
    """The cell's SIP password from the lab's handsets file, None if unknown.

    The database keeps only a digest hash of it (which a SIP client cannot dial with); the
    lab writes the passwords it makes to [lab] handsets_file (lab/callcontrol_lab/handsets.py)."""
    from callcontrol_lab import handsets

    return handsets.recall(handsets.path_of(settings)).get(cell)


async def call_decision(
    settings: Settings, sip_call_id: str, wait_s: float = REASON_WAIT_S
) -> tuple[str | None, str | None]:
    """(outcome, reason) of the daemon's last decision on the call; waits up to ``wait_s``."""
    sql = (
        "SELECT outcome, reason FROM call_decisions WHERE sip_call_id = :cid "
        "ORDER BY id DESC LIMIT 1"
    )
    deadline = time.monotonic() + wait_s
    while True:
        if _db_url(settings) is None:
            return None, None
        row = await _query(settings, sql, {"cid": sip_call_id})
        if row:
            return row[0], row[1]
        if time.monotonic() >= deadline:
            return None, None
        await asyncio.sleep(0.25)


# --- placing the call ---


async def place_call(
    call: logs.HandsetCall,
    *,
    endpoints: Endpoints = Endpoints(),
    called_party: str | None = "answer",
    ring_ms: int = 0,
    called_party_hangup_ms: int = 0,
    called_party_log: Path | None = None,
    accept_ms: int = 1500,
    accept_digit: str = "1",
    decline_digit: str = "2",
    called_party_dtmf_ms: int | None = None,
    called_party_mode: str | None = None,
    settings: Settings | None = None,
    sipp: list[str] | None = None,
    timeout_s: float | None = None,
    keep_run_dir: bool = False,
    sim_dir: Path = SIM_DIR,
) -> CallResult:
    """Place one call and report what happened.

    ``called_party``: a mode of CALLED_PARTY_MODES to start our own called-party SIPp, or None
    when one runs already (then ``called_party_log`` may name its -trace_logs file to read, and
    ``called_party_mode`` says what that one does, to judge its log; default answer).
    accept and decline key their digit ``accept_ms`` after answering, as DTMF tones of
    ``called_party_dtmf_ms`` (default: the handset's). The handset's hold (``call.hold_ms``) is
    not lengthened here: ``calls.place_call`` does that. With a database in ``settings`` the
    daemon's decision on the call is looked up. ValueError for a call that cannot be made,
    SimError when the harness itself fails (no SIPp, ports in use, a SIPp that will not start,
    the timeout).
    """
    from callcontrol.config import load_settings

    call.validate()
    own = called_party is not None
    plan = CalledPartyPlan(
        mode=called_party if called_party is not None else (called_party_mode or "answer"),
        ring_ms=ring_ms,
        hangup_ms=called_party_hangup_ms,
        accept_ms=accept_ms,
        accept_digit=accept_digit,
        decline_digit=decline_digit,
        dtmf_ms=call.dtmf_ms if called_party_dtmf_ms is None else called_party_dtmf_ms,
    )
    plan.validate()
    settings = settings or load_settings()
    prefix = sipp or find_sipp(settings)
    ep = endpoints
    if timeout_s is None:
        timeout_s = estimated_duration_s(call, ring_ms) + 30.0

    if _port_in_use(ep.local_ip, ep.local_port):
        raise SimError(f"the handset's SIP port {ep.local_ip}:{ep.local_port} is in use")
    if own and _port_in_use(ep.local_ip, ep.called_party_port):
        raise SimError(
            f"the called party's port {ep.local_ip}:{ep.called_party_port} is in use "
            "(another called party running? then use --no-called-party)"
        )

    cid_prefix = call_id_prefix(call.cell)
    sip_call_id = f"{cid_prefix}1"
    run = RunDir.create(prefix)
    try:
        hs_code, cp_code = await _run_sipps(
            call, run, prefix, ep, cid_prefix, plan if own else None, timeout_s, sim_dir
        )
        seen = observe(run, sip_call_id, called_party_log, own)
        errors = _errors(run.h("handset_errors.log"))
        if own:
            errors += [f"called party: {e}" for e in _errors(run.h("called_party_errors.log"))]
        connected = seen.called is not None and seen.called.answered_at is not None
        decision = reason = None
        if seen.any_response:  # the call reached Asterisk, so perhaps the daemon
            decision, reason = await call_decision(
                settings, sip_call_id, wait_s=0.0 if connected else REASON_WAIT_S
            )
        v = judge(call, sip_call_id, seen, decision, mode=plan.mode, dtmf_ms=plan.dtmf_ms)
        return CallResult(
            outcome=v.outcome,
            reason=reason,
            decision=decision,
            setup_ms=v.setup_ms,
            post_pin_ms=v.post_pin_ms,
            talk_s=v.talk_s,
            accepted_at_ms=v.accepted_at_ms,
            answered_talk_s=v.answered_talk_s,
            sip_call_id=sip_call_id,
            sip_status=seen.status,
            called_party_saw_invite=(seen.called is not None) if seen.called_observed else None,
            ended_by=v.ended_by,
            called_party_mode=plan.mode if seen.called_observed else None,
            cell=call.cell,
            number=call.number,
            pin_tries=call.pin_tries,
            handset_exit=hs_code,
            called_party_exit=cp_code,
            errors=errors[:10],
            run_dir=str(run.host) if keep_run_dir else None,
        )
    except SimError as e:
        if keep_run_dir:
            raise SimError(f"{e} (SIPp's files are in {run.host})") from None
        raise
    finally:
        if not keep_run_dir:
            run.remove()


async def _run_sipps(
    call: logs.HandsetCall,
    run: RunDir,
    prefix: list[str],
    ep: Endpoints,
    cid_prefix: str,
    plan: CalledPartyPlan | None,
    limit_s: float,
    sim_dir: Path,
) -> tuple[int, int | None]:
    """Run the called party (``plan``, if ours) and the handset; their exit statuses. Both are
    stopped.

    Our called party serves any number of calls (no -m) and is stopped once it has ended ours:
    Asterisk may still retransmit a BYE for a call of an earlier called party that was stopped
    before Asterisk hung up (a handset that hangs up during the U() gosub leaves the called
    party's call up until the gosub ends). With -m 1, such a stray BYE made the next called
    party count it as its one call and exit before the real INVITE came.
    """
    cp_proc = hs_proc = None
    cp_code = None
    try:
        handset_xml = stage_scenario(run, "handset.xml", sim_dir)
        logs.write_injection(run.h("handset.csv"), [call])
        if plan is not None:
            cp_xml = stage_scenario(run, "called_party.xml", sim_dir)
            cp_cmd = called_party_command(
                prefix,
                run,
                cp_xml,
                ip=ep.local_ip,
                port=ep.called_party_port,
                media_port=ep.called_party_media_port,
                mode=plan.mode,
                ring_ms=plan.ring_ms,
                hangup_ms=plan.hangup_ms,
                accept_ms=plan.accept_ms,
                accept_digit=plan.accept_digit,
                decline_digit=plan.decline_digit,
                dtmf_ms=plan.dtmf_ms,
                calls=0,
            )
            cp_proc = await _start(cp_cmd, run.h("called_party.out"))
            await _until_listening(
                cp_proc, ep.local_ip, ep.called_party_port, run.h("called_party.out")
            )
        hs_cmd = handset_command(
            prefix,
            run,
            handset_xml,
            run.s("handset.csv"),
            host=ep.host,
            port=ep.port,
            ip=ep.local_ip,
            local_port=ep.local_port,
            media_port=ep.media_port,
            call_id_prefix=cid_prefix,
        )
        hs_proc = await _start(hs_cmd, run.h("handset.out"))
        hs_code = await _wait(hs_proc, limit_s)
        if hs_code is None:
            raise SimError(f"the call did not end within {limit_s:.0f} s (--timeout)")
        if hs_code not in (0, 1):
            raise SimError(
                f"the handset's SIPp failed (exit {hs_code}): {_tail(run.h('handset.out'))}"
            )
        if cp_proc is not None:
            # The called party ends its call right after the handset (Asterisk's BYE or CANCEL);
            # one that never got the INVITE is stopped at once.
            await _until_ended(run, f"{cid_prefix}1", cp_proc, CALLED_PARTY_GRACE_S)
            cp_code = await _stop(cp_proc)
        return hs_code, cp_code
    finally:
        if hs_proc is not None and hs_proc.returncode is None:
            await _stop(hs_proc)  # its BYE or CANCEL makes Asterisk end the called party's call
            if cp_proc is not None and cp_proc.returncode is None:
                await _wait(cp_proc, 1.0)
        if cp_proc is not None and cp_proc.returncode is None:
            await _stop(cp_proc)


async def _until_ended(
    run: RunDir, call_id: str, proc: asyncio.subprocess.Process, limit_s: float
) -> None:
    """Wait until the called party has ended the call (its "end" event), at most ``limit_s``;
    not at all when it never got the call's INVITE."""
    deadline = time.monotonic() + limit_s
    while proc.returncode is None:
        called = observe(run, call_id, None, True).called
        if called is None or called.end_at is not None or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.05)


def estimated_duration_s(call: logs.HandsetCall, ring_ms: int = 0) -> float:
    """How long the call should take at most if nothing goes wrong, in seconds."""
    used = [logs.keyed(call.pin_for_try(n)) for n in range(1, call.pin_tries + 1)]
    keying = logs.keying_ms(used, call.dtmf_ms) if used else 0
    ms = call.first_pin_ms + call.pin_tries * (keying + call.retry_ms) + ring_ms + call.hold_ms
    return ms / 1000


__all__ = [
    "ACCEPTANCE_MODES",
    "CALLED_PARTY_MODES",
    "KEYING_MODES",
    "CallResult",
    "CalledPartyPlan",
    "Endpoints",
    "SimError",
    "call_decision",
    "cell_password",
    "estimated_duration_s",
    "place_call",
]
