"""The staff file: the console's accounts, one JSON object a line ([console] staff_file).

Why a file and not a table (the same reasoning as the API tokens, adapters/http/auth.py):
whoever can write a database row (a leaked database password, a backup restored by someone
else, a PostgreSQL superuser) must not be able to make themselves an admin of the console,
reset an admin's password to one they know, or re-enable a disabled officer, and so listen in
to calls. The file is the daemon's own (mode 0600, in a 0700 folder), written only by
`callcontrol staff ...` as the daemon's user; the daemon refuses it whole if other accounts may
write it. The passwords are scrypt hashes (domain/staff.py), never the passwords.

The daemon reads the file at start and again whenever it changes (a stat at each look-up), so
an account added, disabled or given a new password takes effect at once: the sessions of a
disabled person, or of one whose password or role changed, end at their next request.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from callcontrol import private_files
from callcontrol.domain.staff import (
    StaffAccount,
    StaffError,
    check_name,
    check_password,
    check_role,
    check_username,
    hash_password,
)

log = logging.getLogger("callcontrol.console.staff")

HEADER = (
    "# callcontrol staff accounts (the console's logins): scrypt hashes, never passwords.\n"
    "# Written by `callcontrol staff add|disable|enable|passwd`; the daemon re-reads it.\n"
)
FIELDS = {f.name for f in fields(StaffAccount)}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _account(data: object) -> StaffAccount:
    if not isinstance(data, dict) or not {"username", "name", "role", "password"} <= set(data):
        raise ValueError("expected a JSON object with username, name, role and password")
    unknown = set(data) - FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    if not isinstance(data.get("disabled", False), bool):
        raise ValueError("disabled must be true or false")
    if any(not isinstance(v, str) for k, v in data.items() if k != "disabled"):
        raise ValueError("every field but disabled must be text")
    account = StaffAccount(**data)
    try:
        check_username(account.username)
        check_role(account.role)
        check_name(account.name)
    except StaffError as e:
        raise ValueError(str(e)) from None
    return account


def parse(text: str) -> tuple[dict[str, StaffAccount], list[str]]:
    """The accounts of the file by username, and the problems found (line numbers only)."""
    accounts: dict[str, StaffAccount] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            account = _account(json.loads(line))
        except ValueError as e:  # json.JSONDecodeError is one
            problems.append(f"line {number}: {str(e).splitlines()[0]}")
            continue
        if account.username in accounts:
            problems.append(f"line {number}: {account.username} is listed twice; both ignored")
            accounts[account.username] = replace(accounts[account.username], disabled=True)
            continue
        accounts[account.username] = account
    return accounts, problems


class StaffFile:
    """The accounts in the file, re-read when it changes (the daemon's view)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._accounts: dict[str, StaffAccount] = {}
        self._seen: private_files.Stamp | None = None
        self._loaded = False

    def load(self) -> int:
        """Read the file now; returns how many accounts may log in."""
        stamp = private_files.stamp(self.path)
        self._accounts, self._seen, self._loaded = {}, stamp, True
        if stamp is None:
            log.warning("staff file %s does not exist: nobody can log in to the console", self.path)
            return 0
        mode = stat.S_IMODE(stamp[3])
        if mode & 0o022:
            log.error(
                "staff file %s is writable by other accounts (mode %04o): nobody can log in",
                self.path,
                mode,
            )
            return 0
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            log.error("staff file %s cannot be read (%s): nobody can log in", self.path, e)
            return 0
        self._accounts, problems = parse(text)
        for problem in problems:
            log.warning("staff file %s, %s", self.path, problem)
        if mode & 0o077:
            log.warning("staff file %s is readable by others: chmod 600 it", self.path)
        active = sum(1 for a in self._accounts.values() if not a.disabled)
        log.info("console: %d staff account(s) may log in (%s)", active, self.path)
        return active

    def get(self, username: str) -> StaffAccount | None:
        """The account (disabled ones too), reading the file again if it changed."""
        if not self._loaded or private_files.stamp(self.path) != self._seen:
            self.load()
        return self._accounts.get(username)


# --- writing (the `callcontrol staff` commands) -------------------------------------------------


def read_accounts(path: Path) -> list[StaffAccount]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise StaffError(f"cannot read {path}: {e}") from None
    return list(parse(text)[0].values())


@contextmanager
def _locked(path: Path) -> Iterator[list[StaffAccount]]:
    """The accounts under an exclusive lock; what the block leaves is written atomically."""
    with private_files.exclusive(path):
        accounts = read_accounts(path)
        before = list(accounts)
        yield accounts
        if accounts != before:
            lines = (json.dumps(asdict(a), ensure_ascii=False, sort_keys=True) for a in accounts)
            private_files.write_file(path, HEADER + "".join(line + "\n" for line in lines))


def _find(accounts: list[StaffAccount], username: str) -> int:
    for i, account in enumerate(accounts):
        if account.username == username:
            return i
    raise StaffError(f"no staff account {username!r} (see `callcontrol staff list`)")


def add(path: Path, username: str, name: str, role: str, password: str, by: str) -> StaffAccount:
    username, name, role = check_username(username), check_name(name), check_role(role)
    hashed = hash_password(check_password(password, username))
    with _locked(path) as accounts:
        if any(a.username == username for a in accounts):
            raise StaffError(f"{username} already has an account (`staff passwd` changes it)")
        now = _now()
        account = StaffAccount(username, name, role, hashed, False, now, by, now, by)
        accounts.append(account)
    return account


def set_disabled(path: Path, username: str, disabled: bool, by: str) -> StaffAccount:
    with _locked(path) as accounts:
        i = _find(accounts, check_username(username))
        if accounts[i].disabled == disabled:
            state = "disabled" if disabled else "enabled"
            raise StaffError(f"{username} is already {state}")
        accounts[i] = replace(accounts[i], disabled=disabled, changed_at=_now(), changed_by=by)
        return accounts[i]


def set_password(path: Path, username: str, password: str, by: str) -> StaffAccount:
    username = check_username(username)
    hashed = hash_password(check_password(password, username))
    with _locked(path) as accounts:
        i = _find(accounts, username)
        accounts[i] = replace(accounts[i], password=hashed, changed_at=_now(), changed_by=by)
        return accounts[i]


def set_role(path: Path, username: str, role: str, by: str) -> StaffAccount:
    with _locked(path) as accounts:
        i = _find(accounts, check_username(username))
        accounts[i] = replace(accounts[i], role=check_role(role), changed_at=_now(), changed_by=by)
        return accounts[i]
