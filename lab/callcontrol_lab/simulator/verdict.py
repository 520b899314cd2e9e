"""The verdict on one simulated call, from what its SIPp logs showed and the daemon's decision:
pure functions of their inputs (no files, no processes, no database)."""

from __future__ import annotations

from dataclasses import dataclass

from callcontrol_lab.simulator import logs

# Called-party modes in which it keys a digit, and those of Dial's U() acceptance gosub.
KEYING_MODES = ("accept", "decline")
ACCEPTANCE_MODES = ("accept", "decline", "ignore")
# A dialplan that refuses the called party's digit hangs the called channel up at once (measured:
# 2 ms after Read() returned). A call still up this long after the digit was keyed was bridged.
ACCEPT_SETTLE_S = 1.0
# When the handset hangs up, a bridged called party gets Asterisk's BYE within milliseconds;
# during the U() gosub it gets none until the gosub ends (measured: after Read()'s timeout).
BRIDGED_FOLLOW_S = 0.5


@dataclass(frozen=True)
class Observed:
    handset: logs.HandsetLog | None
    status: int | None
    any_response: bool
    called: logs.CalledPartyLog | None
    called_observed: bool


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
    seen: Observed,
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
