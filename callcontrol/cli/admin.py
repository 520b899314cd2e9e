"""Operator commands on the database: `db`, `cell`, `prisoner`, `contact` and `number`."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db import admin
from callcontrol.adapters.db.engine import (
    DatabaseError,
    check_schema_current,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    redact,
    session_factory,
    upgrade,
)
from callcontrol.adapters.db.models import Cell, Contact, ContactChange, GlobalNumber, Prisoner
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, Handler, emit
from callcontrol.config import Settings

Parents = list[argparse.ArgumentParser]


# --- the database session of one command -------------------------------------------------------


def _reason(e: BaseException) -> str:
    return " ".join(str(getattr(e, "orig", None) or e).split()) or type(e).__name__


@asynccontextmanager
async def admin_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the settings' database, whose schema must be current.

    Commits when the block ends normally, rolls back otherwise. AdminError becomes a CliError
    with exit status 2 (refused, nothing written); an unreachable database, a schema that is
    not current or a failing database, exit status 1. The engine is disposed of at the end.
    """
    engine = make_engine(database_url(settings))
    try:
        await check_schema_current(engine)
        async with session_factory(engine)() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()
    except admin.AdminError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except DatabaseError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except (OSError, TimeoutError, DBAPIError) as e:
        raise CliError(f"database error: {_reason(e)}", EXIT_FAILED) from None
    finally:
        await engine.dispose()


def _who(args: argparse.Namespace) -> str:
    if getattr(args, "by", None):
        return str(args.by)
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


# --- rendering ---------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _cell(c: Cell) -> dict[str, Any]:
    return {
        "name": c.name,
        "wing": c.wing,
        "sip_username": c.sip_username,
        "enabled": c.enabled,
        "disabled_reason": c.disabled_reason,
        "created_at": _time(c.created_at),
        "updated_at": _time(c.updated_at),
    }


def _prisoner(p: Prisoner, cell: str | None) -> dict[str, Any]:
    # Never the PIN hash: it is of no use to the operator.
    return {
        "prison_number": p.prison_number,
        "name": p.name,
        "cell": cell,
        "active": p.active,
        "suspended_reason": p.suspended_reason,
        "created_at": _time(p.created_at),
        "updated_at": _time(p.updated_at),
    }


def _contact(c: Contact, prisoner: str) -> dict[str, Any]:
    return {
        "prisoner": prisoner,
        "number": c.number,
        "kind": c.kind,
        "status": c.status,
        "label": c.label,
        "created_at": _time(c.created_at),
        "updated_at": _time(c.updated_at),
    }


def _change(c: ContactChange) -> dict[str, Any]:
    return {
        "changed_at": _time(c.changed_at),
        "changed_by": c.changed_by,
        "number": c.number,
        "action": c.action,
        "old_status": c.old_status,
        "new_status": c.new_status,
        "note": c.note,
    }


def _global(g: GlobalNumber) -> dict[str, Any]:
    return {
        "number": g.number,
        "policy": g.policy,
        "privileged": g.privileged,
        "label": g.label,
        "changed_by": g.changed_by,
        "updated_at": _time(g.updated_at),
    }


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], empty: str) -> str:
    """Rows as aligned text columns (or ``empty`` when there are none)."""
    if not rows:
        return empty
    cells = [[str(c).upper() for c in columns]]
    cells += [["-" if row[c] in (None, "") else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


# --- db ----------------------------------------------------------------------------------------


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
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
        raise CliError(f"database upgrade failed: {_reason(e)}", EXIT_FAILED) from None
    head = head_revision()
    text = (
        f"database {redact(url)} is already at the latest schema ({head})"
        if before == head
        else f"database {redact(url)} upgraded from {before or 'empty'} to {head}"
    )
    emit(args, {"database": redact(url), "from": before, "to": head}, text)
    return EXIT_OK


# --- cells -------------------------------------------------------------------------------------


async def cell_add(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        cell, password = await admin.add_cell(s, args.cell, args.sip_password, args.wing)
    data = _cell(cell) | {"sip_password": password}
    emit(
        args,
        data,
        f"cell {cell.name} added; SIP username: {cell.sip_username}; SIP password: {password}",
    )
    return EXIT_OK


async def cell_disable(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        cell = await admin.disable_cell(s, args.cell, args.reason)
    why = f" ({cell.disabled_reason})" if cell.disabled_reason else ""
    emit(args, _cell(cell), f"cell {cell.name} disabled{why}: its handset can make no calls")
    return EXIT_OK


async def cell_enable(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        cell = await admin.enable_cell(s, args.cell)
    emit(args, _cell(cell), f"cell {cell.name} enabled")
    return EXIT_OK


async def cell_list(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        rows = [_cell(c) for c in await admin.list_cells(s)]
    cols = ("name", "wing", "enabled", "disabled_reason")
    emit(args, rows, _table(rows, cols, "no cells"))
    return EXIT_OK


# --- prisoners ---------------------------------------------------------------------------------


async def _with_cell(s: AsyncSession, p: Prisoner) -> dict[str, Any]:
    cell = None if p.cell_id is None else await s.get(Cell, p.cell_id)
    return _prisoner(p, None if cell is None else cell.name)


async def prisoner_add(args: argparse.Namespace, settings: Settings) -> int:
    secret = settings.pin_secret(create=True)
    digits = settings.site.pin_digits
    async with admin_session(settings) as s:
        p = await admin.add_prisoner(
            s, args.prisoner, args.name, args.pin, args.cell, secret, digits
        )
        data = await _with_cell(s, p)
    emit(args, data, f"prisoner {p.prison_number} ({p.name}) added in cell {data['cell']}")
    return EXIT_OK


async def prisoner_set_pin(args: argparse.Namespace, settings: Settings) -> int:
    secret = settings.pin_secret(create=True)
    async with admin_session(settings) as s:
        p = await admin.set_pin(s, args.prisoner, args.pin, secret, settings.site.pin_digits)
        data = await _with_cell(s, p)
    emit(args, data, f"PIN of prisoner {p.prison_number} changed")
    return EXIT_OK


async def prisoner_move(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        p = await admin.move_prisoner(s, args.prisoner, args.cell)
        data = await _with_cell(s, p)
    emit(args, data, f"prisoner {p.prison_number} moved to cell {data['cell']}")
    return EXIT_OK


async def prisoner_suspend(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        p = await admin.suspend_prisoner(s, args.prisoner, args.reason)
        data = await _with_cell(s, p)
    why = f" ({p.suspended_reason})" if p.suspended_reason else ""
    emit(args, data, f"prisoner {p.prison_number} suspended{why}: every call refused")
    return EXIT_OK


async def prisoner_reinstate(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        p = await admin.reinstate_prisoner(s, args.prisoner)
        data = await _with_cell(s, p)
    emit(args, data, f"prisoner {p.prison_number} reinstated")
    return EXIT_OK


async def prisoner_list(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        rows = [_prisoner(p, cell) for p, cell in await admin.list_prisoners(s)]
    cols = ("prison_number", "name", "cell", "active", "suspended_reason")
    emit(args, rows, _table(rows, cols, "no prisoners"))
    return EXIT_OK


# --- contacts ----------------------------------------------------------------------------------


async def contact_add(args: argparse.Namespace, settings: Settings) -> int:
    site = settings.site
    async with admin_session(settings) as s:
        c = await admin.add_contact(
            s,
            args.prisoner,
            args.number,
            args.kind,
            args.label,
            _who(args),
            site.region,
            site.max_social_contacts,
            site.max_legal_contacts,
        )
    emit(
        args,
        _contact(c, args.prisoner),
        f"{c.number} added to the list of {args.prisoner} as a {c.kind} contact, pending approval",
    )
    return EXIT_OK


async def contact_approve(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        c = await admin.approve_contact(
            s, args.prisoner, args.number, _who(args), settings.site.region
        )
    emit(args, _contact(c, args.prisoner), f"{c.number} approved for {args.prisoner}")
    return EXIT_OK


async def contact_block(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        c = await admin.block_contact(
            s, args.prisoner, args.number, _who(args), settings.site.region, args.kind, args.label
        )
    emit(args, _contact(c, args.prisoner), f"{c.number} blocked for {args.prisoner}")
    return EXIT_OK


async def contact_list(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        rows = [_contact(c, args.prisoner) for c in await admin.list_contacts(s, args.prisoner)]
    cols = ("number", "kind", "status", "label", "updated_at")
    emit(args, rows, _table(rows, cols, f"no contacts for {args.prisoner}"))
    return EXIT_OK


async def contact_history(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        rows = [_change(c) for c in await admin.contact_history(s, args.prisoner)]
    cols = ("changed_at", "changed_by", "number", "action", "old_status", "new_status", "note")
    emit(args, rows, _table(rows, cols, f"no contact changes for {args.prisoner}"))
    return EXIT_OK


# --- global numbers ----------------------------------------------------------------------------


async def number_block(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        g = await admin.block_number(s, args.number, args.label, _who(args), settings.site.region)
    emit(args, _global(g), f"{g.number} blocked for every prisoner")
    return EXIT_OK


async def number_allow(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        g = await admin.allow_number(
            s, args.number, args.privileged, args.label, _who(args), settings.site.region
        )
    extra = " (privileged: never recorded or monitored)" if g.privileged else ""
    emit(args, _global(g), f"{g.number} allowed for every prisoner{extra}")
    return EXIT_OK


async def number_list(args: argparse.Namespace, settings: Settings) -> int:
    async with admin_session(settings) as s:
        rows = [_global(g) for g in await admin.list_global_numbers(s)]
    cols = ("number", "policy", "privileged", "label", "changed_by", "updated_at")
    emit(args, rows, _table(rows, cols, "no global numbers"))
    return EXIT_OK


# --- the argument parsers ----------------------------------------------------------------------

_FORMAT = argparse.RawDescriptionHelpFormatter
_NUMBER_HELP = (
    "a telephone number as the operator has it: national (020 7946 0000) or international "
    "(+44 20 7946 0000); spaces, dots, dashes and brackets are ignored"
)


def _group(sub: argparse._SubParsersAction, name: str, help: str, description: str) -> Any:
    parser = sub.add_parser(name, help=help, description=description, formatter_class=_FORMAT)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def _command(
    group: argparse._SubParsersAction,
    name: str,
    parents: Parents,
    handler: Handler,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    parser = group.add_parser(
        name, parents=parents, help=help, description=description, formatter_class=_FORMAT
    )
    parser.set_defaults(handler=handler)
    return parser


def _by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by",
        metavar="NAME",
        help="who made the change, for the history (default: your login name)",
    )


def _prisoner_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prisoner", metavar="PRISONER", help="the prisoner's prison number")


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `db`, `cell`, `prisoner`, `contact` and `number` commands."""
    for part in (
        _register_db,
        _register_cell,
        _register_prisoner,
        _register_contact,
        _register_number,
    ):
        part(sub, parents)


def _register_db(sub: argparse._SubParsersAction, parents: Parents) -> None:
    db = _group(
        sub,
        "db",
        "the database schema",
        "Manage the database schema (SQLite or PostgreSQL, from [database] url).",
    )
    _command(
        db,
        "upgrade",
        parents,
        db_upgrade,
        "bring the database schema up to date",
        "Create the tables, or apply the migrations this version of callcontrol has that "
        "the database lacks. Safe to run again: a database already at the latest schema "
        "is left alone. Every other command refuses a database that is not up to date.",
    )


def _register_cell(sub: argparse._SubParsersAction, parents: Parents) -> None:
    cell = _group(
        sub,
        "cell",
        "cells and their handsets",
        "Cells: one in-cell handset (one SIP endpoint) per cell.",
    )
    add = _command(
        cell,
        "add",
        parents,
        cell_add,
        "add a cell and its handset's SIP account",
        "Add a cell. Its handset registers to Asterisk as SIP user CELL with the "
        "password printed (generated unless --sip-password is given): configure the "
        "handset with it, then run `callcontrol asterisk sync`.",
    )
    add.add_argument(
        "cell", metavar="CELL", help="cell name: 1 to 32 letters, digits, '-' or '_' (e.g. A1-01)"
    )
    add.add_argument(
        "--sip-password",
        metavar="P",
        help="the handset's SIP password: 12 to 128 printable characters without "
        "spaces, ';' or '#' (default: a random 24-character one)",
    )
    add.add_argument("--wing", metavar="W", default="", help="the wing or landing, for lists")
    disable = _command(
        cell,
        "disable",
        parents,
        cell_disable,
        "stop a cell's handset calling",
        "Disable a cell: every call from its handset is refused (and it is left "
        "out of the next `callcontrol asterisk sync`) until it is enabled again.",
    )
    disable.add_argument("cell", metavar="CELL", help="cell name")
    disable.add_argument("--reason", metavar="R", default="", help="why, for the record")
    enable = _command(
        cell,
        "enable",
        parents,
        cell_enable,
        "let a disabled cell call again",
        "Enable a disabled cell: its handset may call again.",
    )
    enable.add_argument("cell", metavar="CELL", help="cell name")
    _command(
        cell,
        "list",
        parents,
        cell_list,
        "list the cells",
        "List every cell: name, wing, whether its handset is enabled (SIP passwords are "
        "not shown).",
    )


def _register_prisoner(sub: argparse._SubParsersAction, parents: Parents) -> None:
    prisoner = _group(
        sub,
        "prisoner",
        "prisoners, their cells and PINs",
        "Prisoners: each has a cell and a PIN to enter on the handset before dialling.",
    )
    add = _command(
        prisoner,
        "add",
        parents,
        prisoner_add,
        "add a prisoner",
        "Add a prisoner in a cell, with the PIN they will enter on the handset. "
        "Only a keyed hash of the PIN is stored; the key is [security] "
        "pin_secret_file (created on first use) or pin_secret.",
    )
    _prisoner_arg(add)
    add.add_argument("--name", required=True, metavar="NAME", help="the prisoner's name")
    add.add_argument(
        "--pin",
        required=True,
        metavar="PIN",
        help="the PIN: exactly [site] pin_digits digits (default 4), different "
        "from every cellmate's",
    )
    add.add_argument("--cell", required=True, metavar="CELL", help="the prisoner's cell")
    pin = _command(
        prisoner,
        "set-pin",
        parents,
        prisoner_set_pin,
        "give a prisoner a new PIN",
        "Replace a prisoner's PIN.",
    )
    _prisoner_arg(pin)
    pin.add_argument("--pin", required=True, metavar="PIN", help="the new PIN")
    move = _command(
        prisoner,
        "move",
        parents,
        prisoner_move,
        "move a prisoner to another cell",
        "Move a prisoner to another cell: from now on they call from its handset.",
    )
    _prisoner_arg(move)
    move.add_argument("--cell", required=True, metavar="CELL", help="the new cell")
    suspend = _command(
        prisoner,
        "suspend",
        parents,
        prisoner_suspend,
        "refuse every call of a prisoner",
        "Suspend a prisoner: every call they try is refused until reinstated.",
    )
    _prisoner_arg(suspend)
    suspend.add_argument("--reason", metavar="R", default="", help="why, for the record")
    reinstate = _command(
        prisoner,
        "reinstate",
        parents,
        prisoner_reinstate,
        "let a suspended prisoner call again",
        "Reinstate a suspended prisoner: they may call their contacts again.",
    )
    _prisoner_arg(reinstate)
    _command(
        prisoner,
        "list",
        parents,
        prisoner_list,
        "list the prisoners",
        "List every prisoner: prison number, name, cell and whether suspended.",
    )


def _register_contact(sub: argparse._SubParsersAction, parents: Parents) -> None:
    contact = _group(
        sub,
        "contact",
        "each prisoner's list of numbers",
        "Each prisoner's contact list: social or legal numbers, pending, approved "
        "or blocked. A prisoner may call only approved contacts (and numbers "
        "allowed for everyone); calls to legal contacts are never recorded. Every "
        "change is kept in the history with who made it and when.",
    )
    add = _command(
        contact,
        "add",
        parents,
        contact_add,
        "put a number on a prisoner's list",
        "Add a number to a prisoner's list, pending approval. Refused: numbers that "
        "are not valid for [site] region, emergency numbers, numbers already on "
        "the list, and more contacts of a kind than [site] max_social_contacts or "
        "max_legal_contacts allow.",
    )
    _prisoner_arg(add)
    add.add_argument("number", metavar="NUMBER", help=_NUMBER_HELP)
    add.add_argument(
        "--kind",
        required=True,
        choices=("social", "legal"),
        help="social (family, friends) or legal (solicitors: never recorded)",
    )
    add.add_argument("--label", metavar="L", default="", help="who the number is, e.g. 'mother'")
    _by(add)
    approve = _command(
        contact,
        "approve",
        parents,
        contact_approve,
        "approve a number on a prisoner's list",
        "Approve a pending (or blocked) contact: the prisoner may now call it.",
    )
    _prisoner_arg(approve)
    approve.add_argument("number", metavar="NUMBER", help=_NUMBER_HELP)
    _by(approve)
    block = _command(
        contact,
        "block",
        parents,
        contact_block,
        "block a number for one prisoner",
        "Block a number for one prisoner. A number not yet on their list is added "
        "to it as blocked, so it cannot be added and approved by mistake later.",
    )
    _prisoner_arg(block)
    block.add_argument("number", metavar="NUMBER", help=_NUMBER_HELP)
    block.add_argument(
        "--kind",
        choices=("social", "legal"),
        default="social",
        help="kind, when the number is not on the list yet (default social)",
    )
    block.add_argument("--label", metavar="L", default="", help="who the number is")
    _by(block)
    lst = _command(
        contact,
        "list",
        parents,
        contact_list,
        "show a prisoner's list",
        "Show a prisoner's contacts: number, kind, status and label.",
    )
    _prisoner_arg(lst)
    history = _command(
        contact,
        "history",
        parents,
        contact_history,
        "show every change to a prisoner's list",
        "Show every change to a prisoner's contacts, oldest first: when, who, "
        "the number, and the status before and after.",
    )
    _prisoner_arg(history)


def _register_number(sub: argparse._SubParsersAction, parents: Parents) -> None:
    number = _group(
        sub,
        "number",
        "numbers blocked or allowed for every prisoner",
        "Numbers for everyone: blocked (beats any approval) or allowed without "
        "approval, such as free help lines. Short codes such as 116123 may be "
        "listed; emergency numbers may not (see [site] emergency_calls).",
    )
    block = _command(
        number,
        "block",
        parents,
        number_block,
        "block a number for everyone",
        "Block a number for every prisoner, whatever their lists say.",
    )
    block.add_argument("number", metavar="NUMBER", help=_NUMBER_HELP + ", or a short code")
    block.add_argument("--label", metavar="L", default="", help="what the number is")
    _by(block)
    allow = _command(
        number,
        "allow",
        parents,
        number_allow,
        "allow a number for everyone",
        "Allow every prisoner to call a number without approval.",
    )
    allow.add_argument("number", metavar="NUMBER", help=_NUMBER_HELP + ", or a short code")
    allow.add_argument(
        "--privileged",
        action="store_true",
        help="calls to it are confidential: never recorded or monitored",
    )
    allow.add_argument("--label", metavar="L", default="", help="what the number is")
    _by(allow)
    _command(
        number,
        "list",
        parents,
        number_list,
        "list the numbers for everyone",
        "List the numbers blocked or allowed for every prisoner.",
    )
