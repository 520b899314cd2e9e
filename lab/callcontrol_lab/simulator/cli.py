"""``callcontrol-sim``: simulated cell handsets and called parties for the Asterisk lab.

``callcontrol-sim call`` places one call and prints one JSON line (see ``CallResult``). Exit
status: 0 when the call ran, whatever its outcome; 1 when the harness failed (one line on
stderr); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from callcontrol.config import ConfigError, load_settings
from callcontrol_lab.simulator import logs
from callcontrol_lab.simulator.call import CALLED_PARTY_MODES, DTMF_DIGITS
from callcontrol_lab.simulator.calls import called_party_plan, handset_call, place_call
from callcontrol_lab.simulator.load import command as load_command
from callcontrol_lab.simulator.sipp import SimError

EXIT_OK, EXIT_HARNESS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so that main() returns 2 for bad arguments."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}", self.prog)


class _UsageError(Exception):
    def __init__(self, message: str, prog: str = "callcontrol-sim call") -> None:
        super().__init__(message)
        self.prog = prog


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _tries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= logs.MAX_PIN_TRIES:
        raise argparse.ArgumentTypeError(f"must be 0 to {logs.MAX_PIN_TRIES}")
    return value


def _digit(text: str) -> str:
    if len(text) != 1 or text not in DTMF_DIGITS:
        raise argparse.ArgumentTypeError(f"not one DTMF digit (0-9, *, #): {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="callcontrol-sim",
        description="Simulated in-cell handsets (SIPp) calling through the callcontrol Asterisk "
        "lab, with a simulated called party behind the PSTN trunk.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    c = sub.add_parser(
        "call",
        help="place one call and print one JSON line describing what happened",
        description="Place one call from a simulated cell handset and print one JSON line: "
        "outcome (connected: the called party answered, and with --called-party accept "
        "accepted, and was bridged; not_accepted: it answered but declined or ignored the "
        "'press 1 to accept' and Asterisk hung up; refused: the call reached Asterisk but the "
        "called party never answered; failed: a SIP-level failure such as a refused "
        "authentication or no response), reason (the daemon's, from its database), setup_ms "
        "(handset's INVITE to the called party's 200 OK), post_pin_ms (last PIN keyed to the "
        "called party's INVITE), talk_s (bridged: from the accept digit, or from the 200 OK "
        "without acceptance, to the BYE), accepted_at_ms (200 OK to the accept digit keyed), "
        "answered_talk_s (200 OK to the BYE), sip_call_id, sip_status, called_party_saw_invite "
        "and more. Exit status: 0 when the call ran whatever its outcome, 1 when the harness "
        "failed, 2 for bad arguments.",
        formatter_class=_Formatter,
    )
    who = c.add_argument_group("the call")
    who.add_argument(
        "--cell",
        required=True,
        help="the cell whose handset calls: its SIP endpoint and digest username",
    )
    who.add_argument(
        "--dial",
        required=True,
        metavar="NUMBER",
        help="the number dialled (the INVITE's request URI)",
    )
    who.add_argument(
        "--pin",
        action="append",
        metavar="PIN",
        help="the PIN keyed when prompted, as RFC 2833 DTMF; give it up to 3 times "
        "for different PINs at successive tries (e.g. --pin 0000 --pin 1234)",
    )
    who.add_argument(
        "--pin-tries",
        type=_tries,
        metavar="N",
        help="how many times a PIN is keyed, 0 to 3; the last --pin repeats "
        "(default: one try per --pin, or 0 without --pin)",
    )
    who.add_argument(
        "--password",
        help="the handset's SIP digest password (default: the cell's in the lab's "
        "[lab] handsets_file of the settings named by --config; the database keeps only a hash)",
    )
    who.add_argument(
        "--hold",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="how long the handset stays on the line after keying its last PIN "
        "(plus --ring, and with --called-party accept or decline plus --accept-after and "
        "the keying of the digit, when our called party answers), then hangs up; about "
        "the talk time of a connected call. With ignore, make it longer than the "
        "dialplan's acceptance timeout",
    )
    timing = c.add_argument_group("timing")
    timing.add_argument(
        "--pin-pause",
        type=_seconds,
        default=1.5,
        metavar="SECONDS",
        help="pause after Asterisk answers before keying the first PIN (the "
        "prompt has started by then; a PIN keyed during it interrupts it)",
    )
    timing.add_argument(
        "--pin-retry-pause",
        type=_seconds,
        default=3.0,
        metavar="SECONDS",
        help="pause after keying a PIN before the next try: the daemon must "
        "have said 'wrong PIN' and be prompting again by then",
    )
    timing.add_argument(
        "--dtmf-ms",
        type=int,
        default=200,
        metavar="MS",
        help="length of each DTMF tone, 50 to 2000 ms (SIPp keys N digits in 400 + (2N+1) x MS ms)",
    )
    timing.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="give up (exit 1) if the call has not ended by then (default: the "
        "call's planned length plus 30 s)",
    )
    cp = c.add_argument_group("the called party")
    cp.add_argument(
        "--called-party",
        choices=CALLED_PARTY_MODES,
        default="accept",
        help="what our simulated called party does: accept (the default: answers, then "
        "presses the accept digit after --accept-after, as callcontrol's dialplan asks), "
        "answer (180, 200, audio; presses nothing: for a dialplan that does not ask the "
        "called party to accept), decline (presses the decline digit "
        "instead), ignore (answers, presses nothing, waits for Asterisk to hang up), busy "
        "(486) or noanswer (180, then waits for the CANCEL). With --no-called-party: what "
        "the running called party does, to judge its --called-party-log",
    )
    cp.add_argument(
        "--accept-after",
        type=_seconds,
        default=1.5,
        metavar="SECONDS",
        help="accept and decline: pause after answering before pressing the digit (the "
        "prompt must be interruptible, or over by then plus 0.4 s of SIPp's lead-in)",
    )
    cp.add_argument(
        "--accept-digit",
        type=_digit,
        metavar="DIGIT",
        help="the digit accept presses (default: [billing] accept_digit of the settings, 1)",
    )
    cp.add_argument(
        "--decline-digit",
        type=_digit,
        metavar="DIGIT",
        help="the digit decline presses (default: 2, or 1 when the accept digit is 2)",
    )
    cp.add_argument(
        "--ring",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="answering modes: ringing time between the 180 and the 200",
    )
    cp.add_argument(
        "--called-party-hangup",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="answering modes: the called party hangs up this long after answering, "
        "or with accept and decline after pressing its digit (0: it waits for the BYE)",
    )
    cp.add_argument(
        "--no-called-party",
        action="store_true",
        help="start no called party: one is already listening on "
        "--called-party-port. Without --called-party-log the outcome then rests on "
        "the daemon's decision in its database",
    )
    cp.add_argument(
        "--called-party-log",
        type=Path,
        metavar="FILE",
        help="with --no-called-party: that called party's SIPp -trace_logs file "
        "(called_party.xml), read to find this call by its X-CC-Call header",
    )
    net = c.add_argument_group("addresses (all on loopback in the lab)")
    net.add_argument("--host", default="127.0.0.1", metavar="IP", help="Asterisk's address")
    net.add_argument(
        "--port",
        type=_port,
        metavar="PORT",
        help="Asterisk's PJSIP UDP port (default: [asterisk] pjsip_port of the settings, 5060)",
    )
    net.add_argument(
        "--local-ip", default="127.0.0.1", metavar="IP", help="address of the SIPp instances"
    )
    net.add_argument(
        "--local-port", type=_port, default=5080, metavar="PORT", help="the handset's SIP port"
    )
    net.add_argument(
        "--media-port",
        type=_port,
        default=6000,
        metavar="PORT",
        help="the handset's RTP port (each SIPp needs its own, see LAB-NOTES)",
    )
    net.add_argument(
        "--called-party-port",
        type=_port,
        metavar="PORT",
        help="the called party's SIP port, where Asterisk's pstn endpoint sends calls (default: "
        "[asterisk] pstn_port of the settings, 5070)",
    )
    net.add_argument(
        "--called-party-media-port",
        type=_port,
        default=16000,
        metavar="PORT",
        help="the called party's RTP port",
    )
    misc = c.add_argument_group("other")
    misc.add_argument(
        "--config",
        metavar="FILE",
        help="callcontrol settings (TOML): the lab's handsets file for the password, the "
        "database for the daemon's reason, and [lab] root for a chrooted SIPp (default: "
        "$CALLCONTROL_CONFIG, else built-in defaults)",
    )
    misc.add_argument(
        "--keep",
        action="store_true",
        help="keep the run's folder (scenarios, injection file, SIPp logs and "
        "message traces) and print its path in run_dir",
    )
    load_command.register(
        sub,
        _Formatter,
        {
            "count": load_command.count_type,
            "rate": load_command.rate_type,
            "seconds": _seconds,
            "port": _port,
        },
    )
    return parser


def _pins(args: argparse.Namespace) -> tuple[tuple[str, ...], int]:
    pins = tuple(args.pin or ())
    if len(pins) > logs.MAX_PIN_TRIES:
        raise _UsageError(f"callcontrol-sim call: at most {logs.MAX_PIN_TRIES} --pin")
    tries = args.pin_tries if args.pin_tries is not None else len(pins)
    if tries and not pins:
        raise _UsageError("callcontrol-sim call: --pin-tries needs a --pin")
    return pins, tries


async def _call(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        print(f"callcontrol-sim: {e}", file=sys.stderr)
        return EXIT_USAGE
    pins, tries = _pins(args)
    own = not args.no_called_party
    common = dict(
        cell=args.cell,
        dial=args.dial,
        pin=pins,
        pin_tries=tries,
        hold=args.hold,
        pin_pause=args.pin_pause,
        pin_retry_pause=args.pin_retry_pause,
        dtmf_ms=args.dtmf_ms,
    )
    acceptance = dict(
        accept_after=args.accept_after,
        accept_digit=args.accept_digit,
        decline_digit=args.decline_digit,
    )
    try:  # bad values are usage errors, before any password lookup
        handset_call(password=args.password or "unchecked", ring=args.ring, **common)
        called_party_plan(settings, mode=args.called_party, dtmf_ms=args.dtmf_ms, **acceptance)
    except ValueError as e:
        raise _UsageError(f"callcontrol-sim call: {e}") from None
    try:
        result = await place_call(
            **common,
            password=args.password,
            settings=settings,
            called_party=args.called_party if own else None,
            called_party_mode=None if own else args.called_party,
            ring=args.ring,
            called_party_hangup=args.called_party_hangup,
            called_party_log=args.called_party_log,
            **acceptance,
            host=args.host,
            port=args.port,
            local_ip=args.local_ip,
            local_port=args.local_port,
            media_port=args.media_port,
            called_party_port=args.called_party_port,
            called_party_media_port=args.called_party_media_port,
            timeout_s=args.timeout,
            keep=args.keep,
        )
    except SimError as e:
        print(f"callcontrol-sim: {e}", file=sys.stderr)
        return EXIT_HARNESS
    print(json.dumps(result.to_dict()))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "call":
            if args.called_party_log is not None and not args.no_called_party:
                raise _UsageError(
                    "callcontrol-sim call: --called-party-log goes with --no-called-party"
                )
            _pins(args)
            return asyncio.run(_call(args))
        if args.command == "load":
            return load_command.main_load(args)
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        print(f"Try '{e.prog} --help'.", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except KeyboardInterrupt:
        print("callcontrol-sim: interrupted", file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
