"""Operator commands on the database: `db`, `cell`, `prisoner`, `contact` and `number`.

Each handler calls one service of callcontrol/services (the same as the console's and the
API's: one path per act; cli/operator.py says who acts) and prints what was done (or the
data, as JSON with --json) once it is committed. `cell disable` and `prisoner suspend` run the
Supervisor, as the API does; without AMI here, the running daemon cuts the live calls.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError

from callcontrol.adapters.db.engine import (
    DatabaseError,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    redact,
    upgrade,
)
from callcontrol.cli import (
    Parents,
    cell_secrets,
    command,
    db_reason,
    group,
    operator,
    row,
    table,
)
from callcontrol.cli import alerts as alerts_cli
from callcontrol.cli import pins as pins_cli
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings
from callcontrol.services.views import ContactView, PrisonerView

Args = argparse.Namespace

CELL = ("name", "wing", "sip_username", "enabled", "disabled_reason", "created_at", "updated_at")
PRISONER = (
    "prison_number",
    "name",
    "active",
    "suspended_reason",
    "max_call_s",
    "created_at",
    "updated_at",
)
CONTACT = ("number", "kind", "status", "label", "max_call_s", "created_at", "updated_at")
CHANGE = ("changed_at", "changed_by", "number", "action", "old_status", "new_status", "note")
GLOBAL = ("number", "policy", "privileged", "label", "changed_by", "updated_at")
PENDING = ("prison_number", "prisoner_name", "cell", "number", "kind", "label", "requested_at",
           "requested_by")  # fmt: skip


def done(args: Args, data: Any, text: str) -> int:
    emit(args, data, text)
    return EXIT_OK


# --- db ----------------------------------------------------------------------------------------


async def db_upgrade(args: Args, settings: Settings) -> int:
    url = database_url(settings)
    try:
        engine = make_engine(url)
        try:
            before = await current_revision(engine)
        finally:
            await engine.dispose()
        await upgrade(url)
    except DatabaseError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except (OSError, TimeoutError, DBAPIError, CommandError) as e:
        raise CliError(f"database upgrade failed: {db_reason(e)}", EXIT_FAILED) from None
    head, where = head_revision(), redact(url)
    if before == head:
        text = f"database {where} is already at the latest schema ({head})"
    else:
        text = f"database {where} upgraded from {before or 'empty'} to {head}"
    return done(args, {"database": where, "from": before, "to": head}, text)


# --- cells -------------------------------------------------------------------------------------


async def cell_disable(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings, by_token=True)
    async with operator.services(settings) as (services, sessions):
        sweep = await operator.supervisor(services, sessions).disable_cell(
            who_acts, args.cell, args.reason
        )
        cell = await services.cells.get(args.cell)
    why = f" ({cell.disabled_reason})" if cell.disabled_reason else ""
    text = f"cell {cell.name} disabled{why}: no calls from it"
    path = f"/cells/{quote(cell.name)}/cut-calls"
    reason = args.reason or f"cell {cell.name} disabled"
    return await operator.cut_live_calls(args, settings, row(cell, CELL), text, path, reason, sweep)


async def cell_enable(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings, by_token=True)
    async with operator.services(settings) as (services, _):
        cell = await services.cells.enable(who_acts, args.cell, getattr(args, "reason", ""))
    return done(args, row(cell, CELL), f"cell {cell.name} enabled")


async def cell_list(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [row(c, CELL) for c in await services.cells.list()]
    columns = ("name", "wing", "enabled", "disabled_reason")
    return done(args, rows, table(rows, columns, "no cells"))


# --- prisoners ---------------------------------------------------------------------------------


def _prisoner(p: PrisonerView) -> dict[str, Any]:
    return row(p, PRISONER, cell=p.cell)


async def prisoner_add(args: Args, settings: Settings) -> int:
    digits = settings.site.pin_digits
    typed = pins_cli.typed_pin(args, settings)  # asked before the database is opened
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):

        async def add(pin: str) -> PrisonerView:
            return await services.prisoners.add(who_acts, args.prisoner, args.name, pin, args.cell)

        p, generated = await pins_cli.with_pin(typed, digits, add)
    text = f"prisoner {p.prison_number} ({p.name}) added in cell {p.cell}"
    return done(args, *_shown_once(_prisoner(p), text, generated))


async def prisoner_set_pin(args: Args, settings: Settings) -> int:
    digits = settings.site.pin_digits
    typed = pins_cli.typed_pin(args, settings)
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):

        async def set_pin(pin: str) -> PrisonerView:
            return await services.prisoners.set_pin(who_acts, args.prisoner, pin)

        p, generated = await pins_cli.with_pin(typed, digits, set_pin)
    text = f"PIN of prisoner {p.prison_number} changed"
    return done(args, *_shown_once(_prisoner(p), text, generated))


def _shown_once(
    data: dict[str, Any], text: str, generated: str | None
) -> tuple[dict[str, Any], str]:
    """A generated PIN is printed this once (only its keyed hash is stored)."""
    if generated is None:
        return data, text
    return data | {
        "pin": generated
    }, f"{text}\nPIN: {generated} (shown this once: give it to the prisoner)"


async def prisoner_limit(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        p = await services.prisoners.set_limit(who_acts, args.prisoner, args.max_call_minutes)
    limit = f"{args.max_call_minutes} min" if p.max_call_s else "none of their own"
    return done(args, _prisoner(p), f"longest call of prisoner {p.prison_number}: {limit}")


async def prisoner_move(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        p = await services.prisoners.move(who_acts, args.prisoner, args.cell)
    return done(args, _prisoner(p), f"prisoner {p.prison_number} moved to cell {p.cell}")


async def prisoner_suspend(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings, by_token=True)
    async with operator.services(settings) as (services, sessions):
        sweep = await operator.supervisor(services, sessions).suspend_prisoner(
            who_acts, args.prisoner, args.reason
        )
        p = await services.prisoners.view(args.prisoner)
    why = f" ({p.suspended_reason})" if p.suspended_reason else ""
    text = f"prisoner {p.prison_number} suspended{why}: every call refused"
    path = f"/prisoners/{quote(p.prison_number)}/cut-calls"
    reason = args.reason or f"prisoner {p.prison_number} suspended"
    return await operator.cut_live_calls(args, settings, _prisoner(p), text, path, reason, sweep)


async def prisoner_reinstate(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings, by_token=True)
    async with operator.services(settings) as (services, _):
        reason = getattr(args, "reason", "")
        p = await services.prisoners.reinstate(who_acts, args.prisoner, reason)
    return done(args, _prisoner(p), f"prisoner {p.prison_number} reinstated")


async def prisoner_list(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [_prisoner(p) for p in await services.prisoners.list()]
    columns = ("prison_number", "name", "cell", "active", "suspended_reason")
    return done(args, rows, table(rows, columns, "no prisoners"))


# --- contacts ----------------------------------------------------------------------------------


def _contact(args: Args, c: ContactView, text: str) -> int:
    return done(args, row(c, CONTACT, prisoner=args.prisoner), text)


async def contact_add(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        c = await services.contacts.add(who_acts, args.prisoner, args.number, args.kind, args.label)
    text = f"{c.number} added to the list of {args.prisoner} ({c.kind}), pending approval"
    return _contact(args, c, text)


async def contact_approve(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        c = await services.contacts.approve(who_acts, args.prisoner, args.number, args.reason)
    return _contact(args, c, f"{c.number} approved for {args.prisoner}")


async def contact_limit(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        c = await services.contacts.set_limit(
            who_acts, args.prisoner, args.number, args.max_call_minutes
        )
    limit = f"{args.max_call_minutes} min" if c.max_call_s else "none of its own"
    return _contact(args, c, f"longest call to {c.number} for {args.prisoner}: {limit}")


async def contact_block(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        c = await services.contacts.block(
            who_acts, args.prisoner, args.number, args.reason, args.kind, args.label
        )
    return _contact(args, c, f"{c.number} blocked for {args.prisoner}")


async def contact_list(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        contacts = await services.contacts.of(args.prisoner)
    rows = [row(c, CONTACT, prisoner=args.prisoner) for c in contacts]
    columns = ("number", "kind", "status", "label", "updated_at")
    return done(args, rows, table(rows, columns, f"no contacts for {args.prisoner}"))


async def contact_pending(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [row(q, PENDING) for q in await services.contacts.pending()]
    columns = ("requested_at", "prison_number", "prisoner_name", "cell", "number", "kind",
               "label", "requested_by")  # fmt: skip
    return done(args, rows, table(rows, columns, "no contacts waiting for approval"))


async def contact_history(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [row(c, CHANGE) for c in await services.contacts.history(args.prisoner)]
    return done(args, rows, table(rows, CHANGE, f"no contact changes for {args.prisoner}"))


# --- global numbers ----------------------------------------------------------------------------


async def number_block(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        g = await services.numbers.block(who_acts, args.number, args.label)
    return done(args, row(g, GLOBAL), f"{g.number} blocked for every prisoner")


async def number_allow(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        g = await services.numbers.allow(who_acts, args.number, args.privileged, args.label)
    extra = " (privileged: never recorded or monitored)" if g.privileged else ""
    return done(args, row(g, GLOBAL), f"{g.number} allowed for every prisoner{extra}")


async def number_list(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [row(g, GLOBAL) for g in await services.numbers.list()]
    columns = ("number", "policy", "privileged", "label", "changed_by", "updated_at")
    return done(args, rows, table(rows, columns, "no numbers for everyone"))


# --- the commands ------------------------------------------------------------------------------

Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*flags: str, **options: Any) -> Arg:
    return flags, options


NUMBER_HELP = (
    "a telephone number, national (020 7946 0000) or international (+44 20 7946 0000); "
    "spaces, dots, dashes and brackets are ignored"
)
CELL_ARG = arg("cell", metavar="CELL", help="cell name, e.g. A1-01")
PRISONER_ARG = arg("prisoner", metavar="PRISONER", help="the prisoner's prison number")
NUMBER_ARG = arg("number", metavar="NUMBER", help=NUMBER_HELP)
GLOBAL_ARG = arg("number", metavar="NUMBER", help=NUMBER_HELP + "; or a short code (116123)")
REASON = arg("--reason", metavar="R", default="", help="why, for the record")
LABEL = arg("--label", metavar="L", default="", help="who or what the number is")
MINUTES = arg(
    "--max-call-minutes",
    type=int,
    required=True,
    metavar="N",
    help="the longest call in minutes; 0 for no limit of its own",
)
BY = arg("--by", metavar="NAME", help="who makes the change, for the history (default: you)")
TOKEN_FILE = arg(
    "--token-file",
    metavar="FILE",
    help="a file holding the API token to cut live calls through the running daemon "
    "(default: [http] token_file, else CALLCONTROL_HTTP_TOKEN)",
)
TOKEN_ARGV = arg("--token", metavar="TOKEN", help="the token itself: refused unless [lab] enabled")
KINDS = ("social", "legal")
PIN_HOW = (
    "The PIN ([site] pin_digits digits, default 4) is asked at the terminal (twice, not "
    "shown), or read from standard input with --pin-stdin, or generated with --generate-pin "
    "(the safest: see docs/security-pins.md) and printed once. It is never given on the "
    "command line, where other users could read it."
)

GROUPS = (
    ("db", "the database schema", "The database schema (SQLite or PostgreSQL: [database] url)."),
    ("cell", "cells and their handsets", "Cells: one in-cell handset (a SIP endpoint) each."),
    ("prisoner", "prisoners, their cells and PINs",
     "Prisoners: each has a cell, and a PIN to key on its handset before dialling."),
    ("contact", "each prisoner's list of numbers",
     "Each prisoner's contact list: social or legal numbers, pending, approved or blocked. A "
     "prisoner may call only approved contacts (and numbers allowed for everyone); calls to "
     "legal contacts are never recorded. Every change is kept with who made it and when."),
    ("number", "numbers blocked or allowed for every prisoner",
     "Numbers for everyone: blocked (beats any approval), or allowed without approval, such as "
     "free help lines. Short codes such as 116123 may be listed; emergency numbers may not "
     "(see [site] emergency_calls)."),
)  # fmt: skip

# (group, command, handler, one-line help, description, arguments)
COMMANDS: tuple[tuple[str, str, Any, str, str, tuple[Arg, ...]], ...] = (
    ("db", "upgrade", db_upgrade, "bring the database schema up to date",
     "Create the tables, or apply the migrations that the database lacks. Safe to run again. "
     "Every other command refuses a database that is not at the latest schema.", ()),
    ("cell", "add", cell_secrets.cell_add, "add a cell and its handset's SIP account",
     "Add a cell. Its handset authenticates to Asterisk as SIP user CELL with the password "
     "printed once (generated unless --sip-password-stdin): set it on the handset, then run "
     "`callcontrol asterisk sync`. Only its digest hash is stored.",
     (arg("cell", metavar="CELL", help="1 to 32 letters, digits, '-' or '_', e.g. A1-01"),
      *cell_secrets.ARGS,
      arg("--wing", metavar="W", default="", help="the wing or landing, for lists"))),
    ("cell", "set-password", cell_secrets.cell_set_password, "give a handset a new SIP password",
     "Replace a cell handset's SIP password (a handset replaced, a password exposed): printed "
     "once (generated unless --sip-password-stdin); only its digest hash is stored. The old "
     "one stops working at the next `callcontrol asterisk sync`.",
     (CELL_ARG, *cell_secrets.ARGS)),
    ("cell", "disable", cell_disable, "refuse every call from a cell's handset",
     "Disable a cell: every call from its handset is refused (and `callcontrol asterisk sync` "
     "leaves it out) until it is enabled. Its live calls are cut through the running daemon's "
     "API when a token is given (--token-file, CALLCONTROL_HTTP_TOKEN or [http] token_file).",
     (CELL_ARG, REASON, TOKEN_FILE, TOKEN_ARGV)),
    ("cell", "enable", cell_enable, "let a disabled cell call again",
     "Enable a disabled cell: its handset may call again (an admin's act: with an officer's "
     "API token configured, refused).", (CELL_ARG, REASON)),
    ("cell", "unlock", alerts_cli.cell_unlock, "end a handset's PIN lockout (audited)",
     alerts_cli.UNLOCK_HELP,
     (CELL_ARG, arg("--reason", required=True, metavar="R", help="why, for the audit log"), BY)),
    ("cell", "list", cell_list, "list the cells",
     "List the cells and whether their handsets are enabled (not their SIP passwords).", ()),
    ("prisoner", "add", prisoner_add, "add a prisoner",
     "Add a prisoner in a cell, with the PIN they will key on its handset. Only a keyed hash of "
     "the PIN is stored; the key is [security] pin_secret or pin_secret_file (made on first "
     "use). Cellmates must have different PINs. " + PIN_HOW,
     (PRISONER_ARG, arg("--name", required=True, metavar="NAME", help="the prisoner's name"),
      arg("--cell", required=True, metavar="CELL", help="the prisoner's cell"))),
    ("prisoner", "set-pin", prisoner_set_pin, "give a prisoner a new PIN",
     "Replace a prisoner's PIN. " + PIN_HOW, (PRISONER_ARG,)),
    ("prisoner", "limit", prisoner_limit, "set the longest call a prisoner may make",
     "Set the longest call this prisoner may make, in minutes (0: no limit of their own). "
     "The site's longest call, contact limits, allowances, calling windows and the credit "
     "still apply: the strictest wins.",
     (PRISONER_ARG, MINUTES)),
    ("prisoner", "move", prisoner_move, "move a prisoner to another cell",
     "Move a prisoner to another cell: from now on they call from its handset.",
     (PRISONER_ARG, arg("--cell", required=True, metavar="CELL", help="the new cell"))),
    ("prisoner", "suspend", prisoner_suspend, "refuse every call of a prisoner",
     "Suspend a prisoner: every call they try is refused until they are reinstated. Their "
     "live calls are cut through the running daemon's API when a token is given (--token-file, "
     "CALLCONTROL_HTTP_TOKEN or [http] token_file).",
     (PRISONER_ARG, REASON, TOKEN_FILE, TOKEN_ARGV)),
    ("prisoner", "reinstate", prisoner_reinstate, "let a suspended prisoner call again",
     "Reinstate a suspended prisoner (an admin's act).", (PRISONER_ARG, REASON)),
    ("prisoner", "list", prisoner_list, "list the prisoners",
     "List the prisoners: prison number, name, cell, and whether suspended.", ()),
    ("contact", "add", contact_add, "put a number on a prisoner's list",
     "Add a number to a prisoner's list, pending approval. Refused: numbers not valid for "
     "[site] region, emergency numbers, short codes (see `callcontrol number`), numbers "
     "already listed, and more contacts of a kind than [site] max_social_contacts or "
     "max_legal_contacts.",
     (PRISONER_ARG, NUMBER_ARG, arg("--kind", required=True, choices=KINDS,
                                    help="social, or legal (a lawyer: never recorded)"),
      LABEL, BY)),
    ("contact", "approve", contact_approve, "approve a number on a prisoner's list",
     "Approve a pending (or blocked) contact: the prisoner may now call it. The reason is "
     "kept in the contact's history and the audit log.",
     (PRISONER_ARG, NUMBER_ARG, REASON, BY)),
    ("contact", "limit", contact_limit, "set the longest call to one contact",
     "Set the longest call a prisoner may make to this number, in minutes (0: no limit of "
     "its own). Every other limit still applies: the strictest wins. Kept in the history.",
     (PRISONER_ARG, NUMBER_ARG, MINUTES, BY)),
    ("contact", "block", contact_block, "block a number for one prisoner",
     "Block a number for one prisoner. A number not yet on the list goes on it as blocked. The "
     "reason is kept in the contact's history and the audit log.",
     (PRISONER_ARG, NUMBER_ARG, arg("--kind", choices=KINDS, default="social",
                                    help="for a number not yet listed (default social)"),
      LABEL, REASON, BY)),
    ("contact", "pending", contact_pending, "the queue of numbers waiting for approval",
     "List every pending contact across prisoners, oldest request first: the prisoner, their "
     "cell, the number, its kind and label, and when and by whom it was asked for (staff, or "
     "the prisoner at a kiosk). Approve or block each with `contact approve|block`.", ()),
    ("contact", "list", contact_list, "show a prisoner's list",
     "Show a prisoner's contacts: number, kind, status and label.", (PRISONER_ARG,)),
    ("contact", "history", contact_history, "show every change to a prisoner's list",
     "Show every change to a prisoner's contacts, oldest first: when, by whom, the number, and "
     "its status before and after.", (PRISONER_ARG,)),
    ("number", "block", number_block, "block a number for every prisoner",
     "Block a number for every prisoner, whatever their lists say.", (GLOBAL_ARG, LABEL, BY)),
    ("number", "allow", number_allow, "allow a number for every prisoner",
     "Let every prisoner call a number without approval (help lines, ...).",
     (GLOBAL_ARG, arg("--privileged", action="store_true",
                      help="confidential: calls to it are never recorded or monitored"),
      LABEL, BY)),
    ("number", "list", number_list, "list the numbers for everyone",
     "List the numbers blocked or allowed for every prisoner.", ()),
)  # fmt: skip


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `db`, `cell`, `prisoner`, `contact` and `number` commands."""
    groups = {name: group(sub, name, help, description) for name, help, description in GROUPS}
    for group_name, name, handler, help, description, arguments in COMMANDS:
        parser = command(groups[group_name], name, parents, handler, help, description)
        for flags, options in arguments:
            parser.add_argument(*flags, **options)
        if handler in (prisoner_add, prisoner_set_pin):
            pins_cli.add_pin_options(parser)
