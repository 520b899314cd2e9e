"""``callcontrol-sim load``: the command line of the load runner."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from callcontrol.config import ConfigError, Settings, load_settings
from callcontrol_lab.simulator.call import Endpoints
from callcontrol_lab.simulator.load import job, mix, plan, provision, report
from callcontrol_lab.simulator.sipp import SimError

EXIT_OK, EXIT_NOT_OK, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("callcontrol.sim.load")

DESCRIPTION = """\
Place many simulated calls through Asterisk at a given rate, then check every call against the
daemon's own records, print a summary, and write the figures (JSON) and a chart (PNG).

It provisions (or reuses) --cells cells in the daemon's database, each with one prisoner, a
PIN, approved contacts and credit, and makes Asterisk learn their handsets (`callcontrol
asterisk sync`). Then SIPp handsets, sending continuous audio, place --calls calls at --rate
calls per second, in the proportions of the mix:

  approved      an approved contact who accepts: connected, charged by the tariff, recorded
  unapproved    a number not on the prisoner's list: refused (not_approved)
  wrong_pin     three wrong PINs: refused (wrong_pin)
  privileged    an approved legal contact: connected, free, never recorded
  busy          the contact's line is busy: not connected, free
  noanswer      the contact never answers: not connected, free
  short_credit  a prisoner with 2p calls a mobile: refused (insufficient_credit)

Afterwards each call must have the decision its kind expects; a connected call must be settled
and billed exactly once with the tariff's charge for the talk time the daemon recorded (which
must agree with the called party's own to 2 s); a recordable call must have a recording whose
length fits and that `recordings verify` passes; a privileged call must have none.

Exit status: 0 when every call was as expected; 1 when any call was not, failed, or the run
could not be done (one line on stderr says why); 2 for bad arguments.
"""

MIX_HELP = (
    "a TOML file of relative weights, one 'kind = weight' line per kind (kinds left out get 0),"
    " e.g. 'approved = 80' and 'busy = 20'. Default: "
    + mix.describe(mix.DEFAULT_MIX).replace("%", "%%")
)


def register(sub: Any, formatter: type[argparse.HelpFormatter], types: dict[str, Any]) -> None:
    p = sub.add_parser(
        "load",
        help="place many calls at a rate and check each against the daemon's records",
        description=DESCRIPTION,
        formatter_class=formatter,
    )
    p.add_argument("--cells", type=types["count"], default=60, help="cells (one prisoner each)")
    p.add_argument("--rate", type=types["rate"], default=2.0, help="calls started per second")
    p.add_argument("--calls", type=types["count"], default=100, help="calls in all")
    p.add_argument(
        "--hold", type=types["seconds"], default=10.0, help="talk time of a connected call, s"
    )
    p.add_argument("--mix", type=Path, metavar="FILE", help=MIX_HELP)
    p.add_argument("--config", help="the daemon's callcontrol.toml (default: as `callcontrol`)")
    p.add_argument(
        "--prefix",
        default="LOAD",
        help="names of the load cells (PREFIX-0001) and prisoners (PREFIX00001); 1 to 8 letters",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="Asterisk's address (default: the lab, on loopback)"
    )
    p.add_argument(
        "--port", type=types["port"], help="Asterisk's PJSIP port ([asterisk] pjsip_port)"
    )
    p.add_argument("--local-ip", default="127.0.0.1", help="the address the SIPps use")
    p.add_argument("--local-port", type=types["port"], default=5080, help="the handsets' SIP port")
    p.add_argument(
        "--media-port", type=types["port"], default=6000, help="handsets' first RTP port"
    )
    p.add_argument(
        "--called-party-port",
        type=types["port"],
        help="the called party's SIP port, where Asterisk's trunk sends calls "
        "([asterisk] pstn_port)",
    )
    p.add_argument(
        "--called-party-media-port", type=types["port"], default=16000, help="its first RTP port"
    )
    p.add_argument(
        "--no-provision",
        action="store_true",
        help="use the cells as they are (they must exist, e.g. from an earlier run)",
    )
    p.add_argument(
        "--no-sync",
        action="store_true",
        help="do not run `callcontrol asterisk sync` (an Asterisk that is not the lab's: make it "
        "know the cells yourself)",
    )
    p.add_argument(
        "--settle-timeout",
        type=types["seconds"],
        default=60.0,
        help="how long to wait, after the last call, for every call to be settled and recorded",
    )
    p.add_argument(
        "--out", type=Path, help="folder for load.json, load.png and the SIPp logs "
        "(default: var/load/YYYYmmdd-HHMMSS under the config's base folder)",
    )  # fmt: skip
    p.add_argument("--no-chart", action="store_true", help="do not draw load.png")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def rate_type(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of calls per second: {text!r}") from None
    if not 0.01 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 0.01 to 1000 calls a second: {text!r}")
    return value


def count_type(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be 1 to 1000000: {text!r}")
    return value


class UsageError(Exception):
    pass


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.config)
    except ConfigError as e:
        raise UsageError(f"callcontrol-sim load: {e}") from None


def _mix(args: argparse.Namespace) -> dict[mix.Kind, float]:
    if args.mix is None:
        return dict(mix.DEFAULT_MIX)
    try:
        text = args.mix.read_text()
    except OSError as e:
        raise UsageError(
            f"callcontrol-sim load: cannot read --mix {args.mix}: {e.strerror}"
        ) from None
    try:
        return mix.parse_mix(text, str(args.mix))
    except mix.MixError as e:
        raise UsageError(f"callcontrol-sim load: {e}") from None


async def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    weights = _mix(args)
    if not (1 <= len(args.prefix) <= 8 and args.prefix.isascii() and args.prefix.isalpha()):
        raise UsageError("callcontrol-sim load: --prefix must be 1 to 8 letters")
    if args.hold + 60 > settings.billing.max_call_s:
        raise UsageError(
            f"callcontrol-sim load: a {args.hold:g} s hold is too close to the site's longest "
            f"call ([billing] max_call_s = {settings.billing.max_call_s}): calls would be cut"
        )
    timing = plan.Timing(hold_s=args.hold)
    kinds = mix.sequence(weights, args.calls)
    try:
        the_plan = plan.plan_load(
            kinds,
            cells=args.cells,
            rate=args.rate,
            timing=timing,
            prefix=args.prefix.upper(),
            pin_digits=settings.site.pin_digits,
        )
    except plan.PlanError as e:
        raise UsageError(f"callcontrol-sim load: {e}") from None
    out = args.out or settings.path("var/load") / time.strftime("%Y%m%d-%H%M%S")
    say = (
        (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    )
    the_job = job.LoadJob(
        settings=settings,
        config=args.config,
        plan=the_plan,
        weights=weights,
        endpoints=Endpoints(
            host=args.host,
            port=args.port or settings.asterisk.pjsip_port,
            local_ip=args.local_ip,
            local_port=args.local_port,
            media_port=args.media_port,
            called_party_port=args.called_party_port or settings.asterisk.pstn_port,
            called_party_media_port=args.called_party_media_port,
        ),
        out=out,
        provision=not args.no_provision,
        sync=not args.no_sync,
        settle_timeout_s=args.settle_timeout,
        chart=not args.no_chart,
        say=say,
        progress=not args.quiet,
        command=" ".join(["callcontrol-sim", *sys.argv[1:]]),
    )
    figs, _ = await job.run_job(the_job)
    print(report.summary(figs))
    print(
        f"figures: {out / 'load.json'}" + ("" if args.no_chart else f"  chart: {out / 'load.png'}")
    )
    return EXIT_OK if figs["ok"] else EXIT_NOT_OK


def main_load(args: argparse.Namespace) -> int:
    """Run the command; errors become one line on stderr and an exit status."""
    try:
        return asyncio.run(run(args))
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except (provision.ProvisionError, SimError) as e:
        print(f"callcontrol-sim load: {e}", file=sys.stderr)
        return EXIT_NOT_OK
    except (OSError, SQLAlchemyError) as e:  # the database or a folder, say
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"callcontrol-sim load: the run could not go on: {detail}", file=sys.stderr)
        return EXIT_NOT_OK
