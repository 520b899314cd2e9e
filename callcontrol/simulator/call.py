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
from callcontrol.simulator import logs
from callcontrol.simulator.sipp import (
    SIM_DIR,
    RunDir,
    SimError,
    called_party_command,
    find_sipp,
    handset_command,
    stage_scenario,
)

CALLED_PARTY_MODES = ("answer", "busy", "noanswer")

# How long the called party may take to end its call after the handset's SIPp has finished
# (Asterisk's BYE or CANCEL follows the handset's at once).
CALLED_PARTY_GRACE_S = 3.0
# How long to look for the daemon's decision, which it writes just before the hangup.
REASON_WAIT_S = 2.0


@dataclass
class CallResult:
    """What happened to one simulated call (printed as one JSON line by the CLI)."""

    outcome: str  # connected | refused | failed
    reason: str | None  # the daemon's reason (call_decisions.reason), None if unknown
    decision: str | None  # the daemon's decision: allow | refuse, None if unknown
    setup_ms: float | None  # handset's INVITE -> called party's 200 OK (connected calls)
    post_pin_ms: float | None  # last PIN keyed -> called party's INVITE (daemon + Asterisk)
    talk_s: float | None  # seconds the called party was connected (None if not observed)
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def judge(
    call: logs.HandsetCall,
    call_id: str,
    seen: _Observed,
    decision: str | None,
) -> tuple[str, float | None, float | None, float | None, str | None]:
    """outcome, setup_ms, post_pin_ms, talk_s, ended_by from what was observed."""
    h, c = seen.handset, seen.called
    ended_by = None
    if h is not None:
        if h.bye_received_at is not None:
            ended_by = "network"
        elif h.bye_sent_at is not None:
            ended_by = "handset"
    connected = c is not None and c.answered_at is not None
    if seen.called_observed:
        if connected:
            outcome = "connected"
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
    setup_ms = post_pin_ms = None
    talk_s: float | None = None
    if seen.called_observed:
        talk_s = round(c.talk_s, 3) if c is not None else 0.0
    if connected and h is not None and h.invite_at is not None:
        setup_ms = round((c.answered_at - h.invite_at) * 1000, 1)
    if c is not None and c.invite_at is not None and h is not None and h.pin_at:
        last_try = len(h.pin_at)
        keyed = h.pin_at[-1] + logs.dtmf_end_ms(call.pin_for_try(last_try), call.dtmf_ms) / 1000
        post_pin_ms = round((c.invite_at - keyed) * 1000, 1)
    return outcome, setup_ms, post_pin_ms, talk_s, ended_by


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
    """The cell's SIP password from the callcontrol database, None if unavailable."""
    row = await _query(settings, "SELECT sip_password FROM cells WHERE name=:n", {"n": cell})
    return row[0] if row else None


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
    settings: Settings | None = None,
    sipp: list[str] | None = None,
    timeout_s: float | None = None,
    keep_run_dir: bool = False,
    sim_dir: Path = SIM_DIR,
) -> CallResult:
    """Place one call and report what happened.

    ``called_party``: answer, busy or noanswer to start our own called-party SIPp, or None when
    one runs already (then ``called_party_log`` may name its -trace_logs file to read). With a
    database in ``settings`` the daemon's decision on the call is looked up. SimError when the
    harness itself fails (no SIPp, ports in use, a SIPp that will not start, the timeout).
    """
    from callcontrol.config import load_settings

    call.validate()
    if called_party is not None and called_party not in CALLED_PARTY_MODES:
        raise ValueError(f"called party mode must be one of {', '.join(CALLED_PARTY_MODES)}")
    settings = settings or load_settings()
    prefix = sipp or find_sipp(settings)
    ep = endpoints
    if timeout_s is None:
        timeout_s = estimated_duration_s(call, ring_ms) + 30.0
    own = called_party is not None

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
            call,
            run,
            prefix,
            ep,
            cid_prefix,
            called_party,
            ring_ms,
            called_party_hangup_ms,
            timeout_s,
            sim_dir,
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
        outcome, setup_ms, post_pin_ms, talk_s, ended_by = judge(call, sip_call_id, seen, decision)
        return CallResult(
            outcome=outcome,
            reason=reason,
            decision=decision,
            setup_ms=setup_ms,
            post_pin_ms=post_pin_ms,
            talk_s=talk_s,
            sip_call_id=sip_call_id,
            sip_status=seen.status,
            called_party_saw_invite=(seen.called is not None) if seen.called_observed else None,
            ended_by=ended_by,
            called_party_mode=called_party,
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
    called_party: str | None,
    ring_ms: int,
    hangup_ms: int,
    limit_s: float,
    sim_dir: Path,
) -> tuple[int, int | None]:
    """Run the called party (if ours) and the handset; their exit statuses. Both are stopped."""
    cp_proc = hs_proc = None
    cp_code = None
    try:
        handset_xml = stage_scenario(run, "handset.xml", sim_dir)
        logs.write_injection(run.h("handset.csv"), [call])
        if called_party is not None:
            cp_xml = stage_scenario(run, "called_party.xml", sim_dir)
            cp_cmd = called_party_command(
                prefix,
                run,
                cp_xml,
                ip=ep.local_ip,
                port=ep.called_party_port,
                media_port=ep.called_party_media_port,
                mode=called_party,
                ring_ms=ring_ms,
                hangup_ms=hangup_ms,
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
            seen = observe(run, f"{cid_prefix}1", None, True)
            in_call = seen.called is not None and seen.called.end_at is None
            cp_code = await _wait(cp_proc, CALLED_PARTY_GRACE_S if in_call else 0.2)
            if cp_code is None:
                cp_code = await _stop(cp_proc)
        return hs_code, cp_code
    finally:
        if hs_proc is not None and hs_proc.returncode is None:
            await _stop(hs_proc)  # its BYE or CANCEL makes Asterisk end the called party's call
            if cp_proc is not None and cp_proc.returncode is None:
                await _wait(cp_proc, 1.0)
        if cp_proc is not None and cp_proc.returncode is None:
            await _stop(cp_proc)


def estimated_duration_s(call: logs.HandsetCall, ring_ms: int = 0) -> float:
    """How long the call should take at most if nothing goes wrong, in seconds."""
    used = [call.pin_for_try(n) for n in range(1, call.pin_tries + 1)]
    keying = logs.keying_ms(used, call.dtmf_ms) if used else 0
    ms = call.first_pin_ms + call.pin_tries * (keying + call.retry_ms) + ring_ms + call.hold_ms
    return ms / 1000


__all__ = [
    "CALLED_PARTY_MODES",
    "CallResult",
    "Endpoints",
    "SimError",
    "call_decision",
    "cell_password",
    "estimated_duration_s",
    "place_call",
]
