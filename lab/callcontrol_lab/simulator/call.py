"""One simulated call: a handset SIPp calling through Asterisk, and a called-party SIPp.

``place_call`` starts the called party (unless told there is one already), starts the handset,
waits for both, stops them, reads their logs and returns a ``CallResult``. It is what
``callcontrol-sim call`` runs, and what tests and the load runner can await in-process.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callcontrol.config import Settings
from callcontrol_lab.simulator import logs, processes
from callcontrol_lab.simulator.records import REASON_WAIT_S, call_decision
from callcontrol_lab.simulator.sipp import (
    SIM_DIR,
    RunDir,
    SimError,
    called_party_command,
    find_sipp,
    handset_command,
    stage_scenario,
)
from callcontrol_lab.simulator.verdict import (
    Observed,
    judge,
)

# answer: answers, keys nothing (dialplans that do not ask the called party to accept).
# accept, decline: answers, then keys the accept or the decline digit; ignore: answers, keys
# nothing and waits for Asterisk to give up (dialplans with Dial's U() acceptance gosub).
CALLED_PARTY_MODES = ("answer", "busy", "noanswer", "accept", "decline", "ignore")
DTMF_DIGITS = "0123456789*#"

# How long the called party may take to end its call after the handset's SIPp has finished
# (Asterisk's BYE or CANCEL follows the handset's at once, except while Dial's U() gosub runs
# on the called channel: then the called party keeps its call until the gosub ends).
CALLED_PARTY_GRACE_S = 3.0


@dataclass
class CallResult:
    """What happened to one simulated call (printed as one JSON line by the CLI)."""

    outcome: str  # connected | not_accepted | refused | failed
    reason: str | None  # the daemon's reason (call_decisions.reason), None if unknown
    decision: str | None  # the daemon's decision: allow | refuse | service (*100), None: unknown
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


def observe(
    run: RunDir, call_id: str, called_party_log: Path | None, own_called_party: bool
) -> Observed:
    """Read the logs of one call."""
    events = logs.parse_events(processes.read(run.h("handset_logs.log")))
    handset = logs.handset_calls(events).get(call_id)
    trace = logs.parse_trace(processes.read(run.h("handset_messages.log")))
    status = logs.final_invite_status(trace, call_id)
    called = None
    observed = own_called_party or called_party_log is not None
    if observed:
        path = called_party_log or run.h("called_party_logs.log")
        calls = logs.called_party_calls(logs.parse_events(processes.read(path)))
        # Only calls that began with an INVITE: a called party that starts just after another
        # one stopped may get the BYEs Asterisk still retransmits for that one's calls.
        calls = [c for c in calls if c.invite_at is not None]
        called = next((c for c in calls if c.x_cc_call == call_id), None)
        if called is None and own_called_party and len(calls) == 1 and not calls[0].x_cc_call:
            # Our own called party got one call without X-CC-Call: the dialplan lacks the
            # header, but the call is surely ours.
            called = calls[0]
    return Observed(handset, status, logs.got_response(trace), called, observed)


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

    if processes.port_in_use(ep.local_ip, ep.local_port):
        raise SimError(f"the handset's SIP port {ep.local_ip}:{ep.local_port} is in use")
    if own and processes.port_in_use(ep.local_ip, ep.called_party_port):
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
        errors = processes.errors(run.h("handset_errors.log"))
        if own:
            errors += [
                f"called party: {e}" for e in processes.errors(run.h("called_party_errors.log"))
            ]
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
            cp_proc = await processes.start(cp_cmd, run.h("called_party.out"))
            await processes.until_listening(
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
        hs_proc = await processes.start(hs_cmd, run.h("handset.out"))
        hs_code = await processes.wait(hs_proc, limit_s)
        if hs_code is None:
            raise SimError(f"the call did not end within {limit_s:.0f} s (--timeout)")
        if hs_code not in (0, 1):
            output = processes.tail(run.h("handset.out"))
            raise SimError(f"the handset's SIPp failed (exit {hs_code}): {output}")
        if cp_proc is not None:
            # The called party ends its call right after the handset (Asterisk's BYE or CANCEL);
            # one that never got the INVITE is stopped at once.
            await _until_ended(run, f"{cid_prefix}1", cp_proc, CALLED_PARTY_GRACE_S)
            cp_code = await processes.stop(cp_proc)
        return hs_code, cp_code
    finally:
        if hs_proc is not None and hs_proc.returncode is None:
            # Its BYE or CANCEL makes Asterisk end the called party's call.
            await processes.stop(hs_proc)
            if cp_proc is not None and cp_proc.returncode is None:
                await processes.wait(cp_proc, 1.0)
        if cp_proc is not None and cp_proc.returncode is None:
            await processes.stop(cp_proc)


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
    "CALLED_PARTY_MODES",
    "CallResult",
    "CalledPartyPlan",
    "Endpoints",
    "SimError",
    "estimated_duration_s",
    "place_call",
]
