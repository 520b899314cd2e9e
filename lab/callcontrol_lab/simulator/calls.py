"""Placing a simulated call in one await, with the lab's settings filling in the rest.

    from callcontrol_lab.simulator.calls import place_call
    result = await place_call(settings=settings, cell="A1-01", pin="1234", dial="02079460000",
                              hold=5)

Asterisk's SIP port and the called party's port come from ``[asterisk] pjsip_port`` and
``pstn_port`` unless given; the SIP password from the lab's handsets file unless given.
``callcontrol-sim call`` runs exactly this. The lower-level ``callcontrol_lab.simulator.call``
(``place_call(HandsetCall, ...)``) takes everything explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from callcontrol.config import Settings, load_settings
from callcontrol_lab.simulator import call as _call
from callcontrol_lab.simulator.call import CalledPartyPlan, CallResult, Endpoints
from callcontrol_lab.simulator.logs import HandsetCall
from callcontrol_lab.simulator.records import cell_password
from callcontrol_lab.simulator.sipp import SimError

__all__ = ["CallResult", "SimError", "called_party_plan", "handset_call", "place_call"]


def handset_call(
    *,
    cell: str,
    password: str,
    dial: str,
    pin: str | Sequence[str] | None = None,
    pin_tries: int | None = None,
    hold: float = 10.0,
    pin_pause: float = 1.5,
    pin_retry_pause: float = 3.0,
    dtmf_ms: int = 200,
    ring: float = 0.0,
    accept_wait: float = 0.0,
) -> HandsetCall:
    """The handset's side of a call, validated (ValueError otherwise).

    ``pin``: one PIN, or up to three for successive tries; ``pin_tries`` defaults to one try per
    PIN and repeats the last. The handset hangs up ``hold`` seconds (plus ``ring``, the called
    party's ringing, and ``accept_wait``, from its answer to its accept digit being keyed) after
    keying its last PIN: about ``hold`` seconds of talk.
    """
    pins = (pin,) if isinstance(pin, str) else tuple(pin or ())
    tries = len(pins) if pin_tries is None else pin_tries
    call = HandsetCall(
        cell=cell,
        password=password,
        number=dial,
        pins=pins,
        pin_tries=tries,
        first_pin_ms=round(pin_pause * 1000),
        dtmf_ms=dtmf_ms,
        retry_ms=round(pin_retry_pause * 1000),
        hold_ms=round((hold + ring + accept_wait) * 1000),
    )
    call.validate()
    return call


def called_party_plan(
    settings: Settings,
    *,
    mode: str = "answer",
    accept_after: float = 1.5,
    accept_digit: str | None = None,
    decline_digit: str | None = None,
    dtmf_ms: int = 200,
) -> CalledPartyPlan:
    """The called party's acceptance settings, validated (ValueError otherwise).

    The accept digit defaults to ``[billing] accept_digit`` (what the dialplan asks for), the
    decline digit to 2, or 1 when the accept digit is 2.
    """
    if accept_after < 0:
        raise ValueError("the accept pause cannot be negative")
    accept = accept_digit if accept_digit is not None else settings.billing.accept_digit
    if decline_digit is None:
        decline_digit = "1" if accept == "2" else "2"
    plan = CalledPartyPlan(
        mode=mode,
        accept_ms=round(accept_after * 1000),
        accept_digit=accept,
        decline_digit=decline_digit,
        dtmf_ms=dtmf_ms,
    )
    plan.validate()
    return plan


async def place_call(
    *,
    cell: str,
    dial: str,
    pin: str | Sequence[str] | None = None,
    pin_tries: int | None = None,
    hold: float = 10.0,
    password: str | None = None,
    settings: Settings | None = None,
    called_party: str | None = "accept",
    ring: float = 0.0,
    called_party_hangup: float = 0.0,
    called_party_log: Path | None = None,
    called_party_mode: str | None = None,
    accept_after: float = 1.5,
    accept_digit: str | None = None,
    decline_digit: str | None = None,
    pin_pause: float = 1.5,
    pin_retry_pause: float = 3.0,
    dtmf_ms: int = 200,
    host: str = "127.0.0.1",
    port: int | None = None,
    local_ip: str = "127.0.0.1",
    local_port: int = 5080,
    media_port: int = 6000,
    called_party_port: int | None = None,
    called_party_media_port: int = 16000,
    timeout_s: float | None = None,
    keep: bool = False,
) -> CallResult:
    """Place one call (see ``callcontrol-sim call --help`` for each argument).

    ``called_party=None``: a called party is already listening (``called_party_log`` may name
    its log, ``called_party_mode`` what it does). In the accept and decline modes our called
    party keys its digit ``accept_after`` seconds after answering, and the handset's hold is
    lengthened by that and the keying, so that the talk after the accept is about ``hold``.
    ``accept_digit``: default ``[billing] accept_digit`` of the settings; ``decline_digit``:
    default 2 (1 when the accept digit is 2). ValueError for arguments that cannot make a call,
    SimError when the harness fails (no password, no SIPp, ports in use, the timeout...).
    """
    settings = settings or load_settings()
    plan = called_party_plan(
        settings,
        mode=called_party or called_party_mode or "answer",
        accept_after=accept_after,
        accept_digit=accept_digit,
        decline_digit=decline_digit,
        dtmf_ms=dtmf_ms,
    )
    if password is None:
        password = await cell_password(settings, cell)
        if password is None:
            raise SimError(
                f"no SIP password for cell {cell}: give --password, or --config of the lab "
                "where the cell was made (its [lab] handsets_file)"
            )
    own = called_party is not None
    call = handset_call(
        cell=cell,
        password=password,
        dial=dial,
        pin=pin,
        pin_tries=pin_tries,
        hold=hold,
        pin_pause=pin_pause,
        pin_retry_pause=pin_retry_pause,
        dtmf_ms=dtmf_ms,
        ring=ring if own else 0.0,
        accept_wait=plan.keying_wait_ms() / 1000 if own else 0.0,
    )
    endpoints = Endpoints(
        host=host,
        port=port if port is not None else settings.asterisk.pjsip_port,
        local_ip=local_ip,
        local_port=local_port,
        media_port=media_port,
        called_party_port=(
            called_party_port if called_party_port is not None else settings.asterisk.pstn_port
        ),
        called_party_media_port=called_party_media_port,
    )
    return await _call.place_call(
        call,
        endpoints=endpoints,
        called_party=called_party,
        ring_ms=round(ring * 1000) if own else 0,
        called_party_hangup_ms=round(called_party_hangup * 1000),
        called_party_log=called_party_log,
        accept_ms=plan.accept_ms,
        accept_digit=plan.accept_digit,
        decline_digit=plan.decline_digit,
        called_party_mode=None if own else plan.mode,
        settings=settings,
        timeout_s=timeout_s,
        keep_run_dir=keep,
    )
