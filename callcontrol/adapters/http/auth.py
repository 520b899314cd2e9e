"""API tokens: the file of "ROLE NAME TOKEN" lines, who a bearer token is, and what they may do.

The file ([http] tokens_file) holds one token a line; blank lines and lines starting with '#'
are ignored, a malformed line is logged and skipped. It is read at start and again whenever it
changes (checked at each request: a stat), so a token added or removed takes effect at once.
A file that is missing or unreadable means no token is valid. Only SHA-256 digests of the
tokens are kept in memory. Roles: officer, and admin (who may do everything an officer may).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("callcontrol.http.auth")

OFFICER = "officer"
ADMIN = "admin"
ROLES = (OFFICER, ADMIN)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN = re.compile(r"[!-~]{20,256}")  # printable ASCII, no spaces
TOKEN_BYTES = 32  # a generated token: 43 URL-safe characters


class TokenError(Exception):
    """A token cannot be added as asked (the message says why)."""


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Has this principal the rights of ``role``? (An admin has an officer's.)"""
        return self.role == role or self.role == ADMIN


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_tokens(text: str) -> tuple[dict[bytes, Principal], list[str]]:
    """Token digests -> principals, and the problems found (line numbers, never tokens)."""
    tokens: dict[bytes, Principal] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            problems.append(f"line {number}: expected ROLE NAME TOKEN")
            continue
        role, name, token = parts
        if role not in ROLES:
            problems.append(f"line {number}: unknown role {role!r} (officer or admin)")
        elif not NAME.fullmatch(name):
            problems.append(f"line {number}: invalid name {name!r}")
        elif not TOKEN.fullmatch(token):
            problems.append(f"line {number}: the token of {name} is too short or malformed")
        elif _digest(token) in tokens:
            problems.append(f"line {number}: the token of {name} is already used; ignored")
        else:
            tokens[_digest(token)] = Principal(name, role)
    return tokens, problems


class TokenFile:
    """The tokens in a file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tokens: dict[bytes, Principal] = {}
        self._seen: tuple[int, int, int] | None = None  # inode, size, mtime of what was read
        self._loaded = False

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> int:
        """Read the file now; returns how many tokens it holds."""
        stamp = self._stamp()
        try:
            text = self.path.read_text(encoding="utf-8") if stamp else ""
            mode = os.stat(self.path).st_mode if stamp else 0
        except (OSError, UnicodeDecodeError) as e:
            log.error("API tokens file %s cannot be read (%s): no token is valid", self.path, e)
            self._tokens, self._seen, self._loaded = {}, stamp, True
            return 0
        self._tokens, problems = parse_tokens(text)
        for problem in problems:
            log.warning("API tokens file %s, %s", self.path, problem)
        if stamp is None:
            log.warning("API tokens file %s does not exist: no token is valid", self.path)
        elif mode & 0o077:
            log.warning("API tokens file %s is readable by others: chmod 600 it", self.path)
        log.info("API tokens: %d loaded from %s", len(self._tokens), self.path)
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
        return self._tokens.get(_digest(token))


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer TOKEN`` header ('' if there is none)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def add_token(path: Path, name: str, role: str) -> str:
    """Append a new random token for ``name`` to the file (made with mode 0600); returns it."""
    if role not in ROLES:
        raise TokenError(f"invalid role {role!r}: officer or admin")
    if not NAME.fullmatch(name):
        raise TokenError(
            f"invalid name {name!r}: 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    existing = ""
    if path.exists():
        existing = path.read_text(encoding="utf-8")
        for line in existing.splitlines():
            parts = line.split()
            if len(parts) == 3 and not line.lstrip().startswith("#") and parts[1] == name:
                raise TokenError(f"{name} already has a token in {path}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        if existing and not existing.endswith("\n"):
            f.write("\n")
        f.write(f"{role} {name} {token}\n")
    return token
