"""Staff accounts' rules: usernames, the password policy, and password hashes (scrypt).

Pure code, no I/O: the accounts live in the staff file (adapters/web/staff_file.py), written by
`callcontrol staff ...` and read by the daemon's console.

Passwords are hashed with scrypt (hashlib, from OpenSSL: no extra dependency), a memory-hard
hash: N=2**15, r=8, p=1 needs 32 MiB and some 50 to 100 ms per guess, so a stolen staff file
cannot be guessed at GPU speed. The parameters are kept in each hash, so they can be raised
later without invalidating the passwords already set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from callcontrol.domain.roles import ROLES

USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,31}")
MAX_NAME = 100
MIN_PASSWORD = 12
MAX_PASSWORD = 256
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
MAX_MEM = 64 * 1024 * 1024  # OpenSSL's default (32 MiB) is just short of N=2**15, r=8
PREFIX = "scrypt"
# Passwords that satisfy the length rule and are still the first ones guessed.
COMMON = frozenset(
    {
        "password1234",
        "passwordpassword",
        "123456789012",
        "qwertyuiopas",
        "letmeinletmein",
        "changemechangeme",
        "administrator",
        "correcthorsebatterystaple",
    }
)


class StaffError(ValueError):
    """An account, a name or a password refused; the message says why, for the operator."""


@dataclass(frozen=True)
class StaffAccount:
    """One person who may log in to the console. ``password`` is the hash, never the password."""

    username: str
    name: str
    role: str
    password: str
    disabled: bool = False
    created_at: str = ""
    created_by: str = ""
    changed_at: str = ""  # when the password, role or state last changed
    changed_by: str = ""


def check_username(username: str) -> str:
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise StaffError(
            f"invalid username {username!r}: 2 to 32 characters, lower-case letters, digits, "
            "'.', '_' or '-', beginning with a letter (e.g. jsmith)"
        )
    return username


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise StaffError(f'invalid name {name!r}: 1 to {MAX_NAME} characters, e.g. "Jane Smith"')
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise StaffError(f"invalid role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_password(password: str, username: str = "") -> str:
    """The password if the policy accepts it; StaffError saying what to change if not."""
    if len(password) < MIN_PASSWORD:
        raise StaffError(
            f"the password is too short: at least {MIN_PASSWORD} characters (a few words "
            "make a good one)"
        )
    if len(password) > MAX_PASSWORD:
        raise StaffError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if not password.isprintable():
        raise StaffError("the password contains control characters")
    if password.strip() != password:
        raise StaffError("the password begins or ends with a space")
    if len(set(password)) < 5:
        raise StaffError("the password repeats too few characters: use at least 5 different")
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise StaffError("the password contains the username")
    if lowered in COMMON:
        raise StaffError("the password is one of the first ones guessed: choose another")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """The stored form: ``scrypt$N$r$p$SALT$HASH`` (base64)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=MAX_MEM, dklen=HASH_BYTES
    )
    return f"{PREFIX}${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match the stored hash? False for a malformed hash (never raises)."""
    try:
        prefix, n, r, p, salt, key = stored.split("$")
        if prefix != PREFIX:
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        if not (2 <= n_ <= 2**20 and 1 <= r_ <= 32 and p_ == 1):
            return False
        expected = base64.b64decode(key, validate=True)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=n_,
            r=r_,
            p=p_,
            maxmem=MAX_MEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def stamp(account: StaffAccount) -> str:
    """What a session remembers of its account: when the password, role or state changes, the
    stamp does, and the session ends."""
    text = f"{account.password}|{account.role}|{account.disabled}|{account.changed_at}"
    return hashlib.sha256(text.encode()).hexdigest()
