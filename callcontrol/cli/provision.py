"""`callcontrol handset provision CELL --model M`: a desk phone's provisioning file.

The file carries the cell's SIP account and locks the phone's keypad down (provision/). The
database keeps only the digest of a cell's SIP password (issue 9: ``md5_cred``), which cannot
be turned back into the password, so the password comes either from the operator (standard
input, or a prompt without echo: never the command line) and is checked against that digest,
or, with ``--new-password``, is generated, stored as the cell's new digest in the same step and
written only into the file (which must then be given with ``--to``). Output files are 0600.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from pathlib import Path

from callcontrol import private_files
from callcontrol.adapters.db.operator_store import SessionStore
from callcontrol.cli import admin_session, operator
from callcontrol.cli.cell_secrets import tell_lab
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, emit
from callcontrol.config import Settings
from callcontrol.provision.profile import HandsetProfile, ProfileError, make_profile
from callcontrol.provision.render import MODELS, render
from callcontrol.services.cells import CellService
from callcontrol.services.errors import Invalid
from callcontrol.services.views import CellView

DESCRIPTION = """\
Write the provisioning file for a cell's desk phone: its SIP account (username: the cell's
endpoint; server, port and transport from [provision]), codecs G.722, A-law then u-law,
DTMF by RFC 2833, SRTP required over TLS, and a locked-down keypad (no transfer,
conference, call forward, DND, redial or call log, speed-dial keys, web UI; the menus and
a factory reset need the phones' admin password from [provision] admin_password_file;
the account and the provisioning server cannot be changed on the phone; [provision]
hotline, if set, is called when the handset is lifted).

The SIP password: the database keeps only its digest, so give the cell's current password
on standard input (a prompt without echo on a terminal; never on the command line), where
it is checked against that digest; or use --new-password to have a new one generated, kept
as the cell's digest and written only into the file (--to is then required; run
`callcontrol asterisk sync` afterwards so Asterisk learns it).

The file is written with mode 0600 (give it to your provisioning server's user, and serve
it to that phone only: it holds the handset's password). Without --to the file text goes
to standard output.
"""

MODEL_HELP = ", ".join(f"{m.name} ({m.family})" for m in MODELS.values())


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `handset provision` command."""
    handset = sub.add_parser("handset", help="desk phones in the cells: provisioning files")
    actions = handset.add_subparsers(dest="handset_command", required=True, metavar="ACTION")
    provision = actions.add_parser(
        "provision",
        parents=parents,
        help="write a cell's desk-phone provisioning file (SIP account, locked keypad)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    provision.add_argument("cell", metavar="CELL", help="the cell (its handset's endpoint)")
    provision.add_argument(
        "--model", required=True, choices=sorted(MODELS), help=f"the phone family: {MODEL_HELP}"
    )
    provision.add_argument(
        "--to", metavar="FILE", type=Path, help="write the file here (mode 0600), not to stdout"
    )
    provision.add_argument(
        "--new-password",
        action="store_true",
        help="generate a new SIP password, store its digest for the cell and write it only "
        "into the file (needs --to); otherwise the current password is read from stdin",
    )
    provision.set_defaults(handler=handset_provision)


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("the cell's current SIP password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError(
            "no SIP password on standard input (or use --new-password to set a new one)",
            EXIT_USAGE,
        )
    return password


def admin_password(settings: Settings) -> str:
    """The phones' admin password, from [provision] admin_password_file (made random, 0600,
    when missing)."""
    path = settings.path(settings.provision.admin_password_file)
    try:
        if not path.exists():
            private_files.write_file(path, secrets.token_urlsafe(18) + "\n")
        private_files.tighten(path)
        return path.read_text().strip()
    except OSError as e:
        raise CliError(f"handsets' admin password file {path}: {e.strerror}", EXIT_FAILED) from None


def _ca_pem(settings: Settings) -> str:
    name = settings.provision.ca_cert_file
    if not name:
        return ""
    path = settings.path(name)
    try:
        return path.read_text()
    except OSError as e:
        raise CliError(f"[provision] ca_cert_file {path}: {e.strerror}", EXIT_FAILED) from None


def _profile(settings: Settings, cell: CellView, password: str) -> HandsetProfile:
    p = settings.provision
    if p.hotline and p.hotline != settings.site.two_stage_number:
        # A lifted handset would dial the hotline as a number to call, not ask for one.
        raise CliError(
            f"[provision] hotline {p.hotline!r} is not [site] two_stage_number "
            f"{settings.site.two_stage_number!r}: set them equal (or leave hotline empty)",
            EXIT_USAGE,
        )
    try:
        return make_profile(
            cell=cell.name,
            username=cell.sip_username,
            password=password,
            server=p.sip_server,
            transport=p.transport,
            port=p.sip_port,
            admin_password=admin_password(settings),
            hotline=p.hotline,
            provisioning_url=p.provisioning_url,
            ca_cert_url=p.ca_cert_url,
            ca_cert_pem=_ca_pem(settings),
        )
    except ProfileError as e:
        raise CliError(str(e), EXIT_USAGE) from None


def _write(path: Path, text: str) -> None:
    if path.is_dir():
        raise CliError(f"--to {path} is a folder: name the file", EXIT_USAGE)
    try:
        private_files.write_file(path, text)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}", EXIT_FAILED) from None


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


async def handset_provision(args: argparse.Namespace, settings: Settings) -> int:
    to: Path | None = args.to
    if args.new_password and to is None:
        raise CliError("--new-password writes the new password only into a file: add --to FILE")
    if not settings.provision.sip_server:
        raise CliError("[provision] sip_server is not set: the address handsets reach Asterisk at")
    given = None if args.new_password else _read_password()
    written = False
    try:
        who_acts = operator.actor(args, settings)
        async with admin_session(settings) as s:
            # In this session: the new password is stored only if the file is written.
            cells = CellService(SessionStore(s))
            if given is None:
                cell, password = await cells.set_sip_password(who_acts, args.cell, None)
            else:
                try:
                    cell, password = await cells.check_sip_password(args.cell, given), given
                except Invalid as e:
                    raise CliError(f"{e}: give the current one, or use --new-password") from None
            text = render(args.model, _profile(settings, cell, password))
            if to is None:
                sys.stdout.write(text)
                return EXIT_OK
            _write(to, text)
            written = True
    except BaseException:
        if written and given is None:  # the new password was not stored: the file is void
            _discard(to)
        raise
    if given is None:
        tell_lab(settings, cell.name, password)  # only with [lab] enabled
    new = given is None
    data = {"cell": cell.name, "model": args.model, "file": str(to), "new_password": new}
    said = f"cell {cell.name}: {MODELS[args.model].family} provisioning file written to {to} "
    said += "(mode 0600; it holds the SIP password)"
    if new:
        said += "; new SIP password set, in that file only: run `callcontrol asterisk sync`"
    emit(args, data, said)
    return EXIT_OK
