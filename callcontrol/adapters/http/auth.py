"""API tokens: the tokens file, who a bearer token is, and what they may do.

The file ([http] tokens_file) holds one JSON object a line, written by `callcontrol token add`
(token_store.py): an id, the person the token belongs to, the role, the SHA-256 of the token,
when and by whom it was made and, once revoked, when and by whom. The token itself is never
stored: it is shown once when made. SHA-256 and not a slow password hash, because a token is
256 random bits: nobody can try enough guesses against its hash for slowness to matter (a slow
hash protects low-entropy secrets such as passwords and PINs), and a fast one costs the daemon
nothing per request.

Why a file and not a table: the database is the wider door. Whoever can write a row there
(a leaked database password, a backup restored by someone else, a PostgreSQL superuser) could
otherwise mint an admin token, or give an officer's token the admin role, and so listen in to
calls. The file is the daemon's own (mode 0600, in a 0700 folder), beside the PIN secret; the
daemon refuses it whole if it is writable by other accounts.

The file is read at start and again whenever it changes (checked at each request: a stat), so
a token added or revoked takes effect at once. A file that is missing or unreadable means no
token is valid. Lines of the older "ROLE NAME TOKEN" format (a token in clear) are still
accepted, with a warning at every load, until a `callcontrol token` command rewrites the file
with their hashes. Roles: officer, admin and auditor; what each may do is domain/roles.py's
table, the same for the console and the command line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from callcontrol import private_files
from callcontrol.domain.roles import ROLES, Right, may

log = logging.getLogger("callcontrol.http.auth")

ROLE_NAMES = ", ".join(ROLES[:-1]) + " or " + ROLES[-1]
LEGACY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN = re.compile(r"[!-~]{20,256}")  # printable ASCII, no spaces
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
TOKEN_ID = re.compile(r"[0-9a-f]{8,32}")
MAX_PERSON = 100


class TokenError(Exception):
    """A token cannot be added or revoked as asked (the message says why)."""


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to: a named person, and their role."""

    name: str
    role: str

    def may(self, right: Right) -> bool:
        """Has this principal's role the ``right`` (domain/roles.py)?"""
        return may(self.role, right)


@dataclass(frozen=True)
class TokenEntry:
    """One line of the tokens file (never the token itself)."""

    id: str
    person: str
    role: str
    sha256: str
    created_at: str = ""
    created_by: str = ""
    revoked_at: str = ""
    revoked_by: str = ""
    legacy: bool = False  # read from an old "ROLE NAME TOKEN" line

    @property
    def active(self) -> bool:
        return not self.revoked_at

    def to_json(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if k != "legacy"}
        return json.dumps(fields, ensure_ascii=False, sort_keys=True)


def digest(token: str) -> str:
    """The SHA-256 of a token, in hex: what the file keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_person(person: str) -> str:
    """The person's name, stripped, if it can name a token's owner; else TokenError."""
    person = " ".join(person.split())
    if not person or len(person) > MAX_PERSON or not person.isprintable():
        raise TokenError(
            f"invalid person {person!r}: 1 to {MAX_PERSON} printable characters, "
            'e.g. --person "Jane Officer"'
        )
    if person.startswith("-"):
        raise TokenError(f"invalid person {person!r}: must not begin with '-'")
    return person


def _entry(data: object) -> TokenEntry:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    text = {k: v for k, v in data.items() if isinstance(v, str)}
    if set(text) != set(data) or not {"id", "person", "role", "sha256"} <= set(text):
        raise ValueError("expected id, person, role and sha256 (text)")
    unknown = set(text) - {f for f in TokenEntry.__dataclass_fields__ if f != "legacy"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    entry = TokenEntry(**text)
    if entry.role not in ROLES:
        raise ValueError(f"unknown role {entry.role!r} ({ROLE_NAMES})")
    if not SHA256_HEX.fullmatch(entry.sha256) or not TOKEN_ID.fullmatch(entry.id):
        raise ValueError("malformed id or sha256")
    try:
        check_person(entry.person)
    except TokenError as e:
        raise ValueError(str(e)) from None
    return entry


def _legacy(parts: list[str]) -> TokenEntry:
    role, name, token = parts
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} ({ROLE_NAMES})")
    if not LEGACY_NAME.fullmatch(name):
        raise ValueError(f"invalid name {name!r}")
    if not TOKEN.fullmatch(token):
        raise ValueError(f"the token of {name} is too short or malformed")
    hashed = digest(token)
    return TokenEntry(hashed[:12], name, role, hashed, legacy=True)


def parse_entries(text: str) -> tuple[list[TokenEntry], list[str]]:
    """Every entry of the file, and the problems found (line numbers, never tokens)."""
    entries: list[TokenEntry] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("{"):
                entry = _entry(json.loads(line))
            elif len(line.split()) == 3:
                entry = _legacy(line.split())
            else:
                raise ValueError("expected one JSON object (see `callcontrol token add`)")
        except ValueError as e:  # json.JSONDecodeError is one
            problems.append(f"line {number}: {str(e).splitlines()[0]}")
            continue
        if entry.legacy:
            problems.append(
                f"line {number}: the token of {entry.person} is stored in clear (an old file): "
                "any `callcontrol token` command rewrites it as a hash"
            )
        entries.append(entry)
    return entries, problems


def parse_tokens(text: str) -> tuple[dict[str, Principal], list[str]]:
    """Active token digests -> principals, and the problems found."""
    entries, problems = parse_entries(text)
    tokens: dict[str, Principal] = {}
    for entry in entries:
        if not entry.active:
            continue
        if entry.sha256 in tokens:
            problems.append(f"token {entry.id} of {entry.person} is listed twice; ignored")
            continue
        tokens[entry.sha256] = Principal(entry.person, entry.role)
    return tokens, problems


class TokenFile:
    """The tokens in a file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tokens: dict[str, Principal] = {}
        self._seen: tuple[int, int, int, int] | None = None  # inode, size, mtime, mode
        self._loaded = False

    def _stamp(self) -> tuple[int, int, int, int] | None:
        return private_files.stamp(self.path)

    def _refused(self, why: str, stamp: tuple[int, int, int, int] | None) -> int:
        log.error("API tokens file %s %s: no token is valid", self.path, why)
        self._tokens, self._seen, self._loaded = {}, stamp, True
        return 0

    def load(self) -> int:
        """Read the file now; returns how many active tokens it holds."""
        stamp = self._stamp()
        if stamp is None:
            log.warning("API tokens file %s does not exist: no token is valid", self.path)
            self._tokens, self._seen, self._loaded = {}, stamp, True
            return 0
        mode = stat.S_IMODE(stamp[3])
        if mode & 0o022:  # anyone else could add a token of their own
            return self._refused(f"is writable by other accounts (mode {mode:04o})", stamp)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            return self._refused(f"cannot be read ({e})", stamp)
        self._tokens, problems = parse_tokens(text)
        for problem in problems:
            log.warning("API tokens file %s, %s", self.path, problem)
        if mode & 0o077:
            log.warning("API tokens file %s is readable by others: chmod 600 it", self.path)
        log.info("API tokens: %d active in %s", len(self._tokens), self.path)
        self._seen, self._loaded = stamp, True
        return len(self._tokens)

    def refresh(self) -> None:
        """Read the file again if it changed since it was last read."""
        if not self._loaded or self._stamp() != self._seen:
            self.load()

    def check(self, token: str) -> Principal | None:
        """Whose token this is (None: nobody's)."""
        self.refresh()
        if not token:
            return None
        return self._tokens.get(digest(token))


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer TOKEN`` header ('' if there is none)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
