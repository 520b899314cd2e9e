"""`callcontrol staff ...`: the staff console's accounts (adapters/web/staff_file.py).

Passwords come from a prompt (asked twice, not echoed) or one line of standard input
(``--password-stdin``, for scripts): never from the command line, where every local account can
read them. The policy (domain/staff.py) says clearly what to change in a refused password.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcontrol.adapters.web import staff_file
from callcontrol.cli import Parents, command, group, table, who
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, emit
from callcontrol.config import Settings
from callcontrol.domain.roles import ROLES
from callcontrol.domain.staff import StaffAccount, StaffError, check_password

Args = argparse.Namespace
COLUMNS = ("username", "name", "role", "state", "created_at", "changed_at", "changed_by")


def _path(settings: Settings) -> Path:
    return settings.path(settings.console.staff_file)


def _call(fn: Callable[..., Any], *a: Any) -> Any:
    try:
        return fn(*a)
    except StaffError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except OSError as e:
        raise CliError(f"cannot write the staff file: {e.strerror or e}", EXIT_FAILED) from None


def read_password(args: Args, username: str) -> str:
    """The new password: one line of standard input, or a prompt asked twice."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"New password for {username}: ")
        _call(check_password, password, username)  # say so before asking again
        if getpass.getpass("The same password again: ") != password:
            raise CliError("the two passwords differ: nothing changed")
    else:
        raise CliError(
            "no terminal to ask the password on: give it on standard input with "
            "--password-stdin (never on the command line)"
        )
    _call(check_password, password, username)
    return password


def _row(a: StaffAccount) -> dict[str, Any]:
    fields = ("username", "name", "role", "created_at", "created_by", "changed_at", "changed_by")
    return {f: getattr(a, f) for f in fields} | {"state": "disabled" if a.disabled else "active"}


def staff_add(args: Args, settings: Settings) -> int:
    username = args.username.strip()
    password = read_password(args, username)
    account = _call(
        staff_file.add, _path(settings), username, args.name, args.role, password, who(args)
    )
    text = (
        f"{account.username} ({account.name}, {account.role}) may log in to the console "
        f"(/console/ on the [http] server)"
    )
    emit(args, _row(account), text)
    return EXIT_OK


def staff_passwd(args: Args, settings: Settings) -> int:
    username = args.username.strip()
    if not any(a.username == username for a in _call(staff_file.read_accounts, _path(settings))):
        raise CliError(f"no staff account {username!r} (see `callcontrol staff list`)")
    password = read_password(args, username)
    account = _call(staff_file.set_password, _path(settings), username, password, who(args))
    emit(args, _row(account), f"{account.username}'s password changed; their sessions end")
    return EXIT_OK


def staff_disable(args: Args, settings: Settings) -> int:
    account = _call(staff_file.set_disabled, _path(settings), args.username, True, who(args))
    text = f"{account.username} may no longer log in; their sessions end at their next request"
    emit(args, _row(account), text)
    return EXIT_OK


def staff_enable(args: Args, settings: Settings) -> int:
    account = _call(staff_file.set_disabled, _path(settings), args.username, False, who(args))
    emit(args, _row(account), f"{account.username} may log in again")
    return EXIT_OK


def staff_role(args: Args, settings: Settings) -> int:
    account = _call(staff_file.set_role, _path(settings), args.username, args.role, who(args))
    text = f"{account.username} is now an {account.role}; their sessions end (log in again)"
    emit(args, _row(account), text)
    return EXIT_OK


def staff_list(args: Args, settings: Settings) -> int:
    rows = [_row(a) for a in _call(staff_file.read_accounts, _path(settings))]
    emit(args, rows, table(rows, COLUMNS, "no staff accounts (`callcontrol staff add`)"))
    return EXIT_OK


PASSWORD_HELP = (
    "read the password from one line of standard input (for scripts); without it the "
    "password is asked twice on the terminal. Never on the command line."
)


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    staff = group(
        sub,
        "staff",
        "staff console accounts: add, disable, passwd, list",
        "The people who may log in to the staff console (/console/ on the daemon's [http] "
        "server), each with a role: officer (supervises calls and contacts, takes phones out "
        "of service), admin (also lets calls through again, money and set-up), auditor (reads "
        "everything, changes nothing). Kept in [console] staff_file (mode 0600: scrypt hashes, "
        "never passwords); the daemon reads it again when it changes, so a change takes effect "
        "at once. Passwords: at least 12 characters, not containing the username.",
    )
    add = command(
        staff,
        "add",
        parents,
        staff_add,
        "give a person a console account",
        "Add an account. The password is asked twice (or read with --password-stdin).",
    )
    add.add_argument("username", metavar="USERNAME", help="their login, e.g. jsmith")
    add.add_argument("--role", required=True, choices=ROLES, help="officer, admin or auditor")
    add.add_argument("--name", required=True, metavar="NAME", help='their full name, "Jane Smith"')
    add.add_argument("--password-stdin", action="store_true", help=PASSWORD_HELP)
    passwd = command(
        staff,
        "passwd",
        parents,
        staff_passwd,
        "set a new password for a person",
        "Set a new password; the person's open sessions end at their next request.",
    )
    passwd.add_argument("username", metavar="USERNAME")
    passwd.add_argument("--password-stdin", action="store_true", help=PASSWORD_HELP)
    disable = command(
        staff,
        "disable",
        parents,
        staff_disable,
        "stop a person logging in (their sessions end)",
        "Disable an account: no more logins, and the person's open sessions end at their next "
        "request. The account stays listed (and in the audit log); `staff enable` undoes it.",
    )
    disable.add_argument("username", metavar="USERNAME")
    enable = command(
        staff, "enable", parents, staff_enable, "let a disabled person log in again", "Enable."
    )
    enable.add_argument("username", metavar="USERNAME")
    role = command(
        staff,
        "role",
        parents,
        staff_role,
        "change a person's role",
        "Change the role; the person's sessions end and they log in again with the new one.",
    )
    role.add_argument("username", metavar="USERNAME")
    role.add_argument("--role", required=True, choices=ROLES)
    for parser in (add, passwd, disable, enable, role):
        parser.add_argument(
            "--by", metavar="WHO", help="who makes the change (default: your login)"
        )
    command(staff, "list", parents, staff_list, "list the accounts", "List every account.")
