"""Making, listing and revoking API tokens in the tokens file (`callcontrol token ...`).

Every change rewrites the whole file atomically (a 0600 temporary file renamed over it) while
holding a lock, so two commands at once cannot lose each other's token, and the daemon never
reads half a file. A rewrite also turns lines of the old "ROLE NAME TOKEN" format into hashes.
Revoked tokens stay in the file, marked with when and by whom, so `token list` shows who held
which token; the daemon accepts only active ones.

A generated token is ``cc_`` and 43 URL-safe characters (256 random bits): it never begins
with '-' (a token such as ``-Xy...`` was read by argument parsers as an option), and the prefix
lets a secret scanner recognise one pasted where it should not be.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from callcontrol import private_files
from callcontrol.adapters.http.auth import (
    ROLE_NAMES,
    ROLES,
    TokenEntry,
    TokenError,
    check_person,
    digest,
    parse_entries,
)

TOKEN_PREFIX = "cc_"
TOKEN_BYTES = 32
HEADER = (
    "# callcontrol API tokens: SHA-256 hashes only (the tokens were shown once when made).\n"
    "# Written by `callcontrol token add|revoke`; the daemon re-reads it when it changes.\n"
)


def new_token() -> str:
    """A fresh random token (never beginning with '-')."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def _locked(path: Path) -> Iterator[list[TokenEntry]]:
    """The entries of the file, under an exclusive lock; what the block leaves is written."""
    with private_files.exclusive(path):
        entries = read_entries(path)
        before = list(entries)
        yield entries
        if entries != before or any(e.legacy for e in entries):
            text = HEADER + "".join(replace(e, legacy=False).to_json() + "\n" for e in entries)
            private_files.write_file(path, text)


def read_entries(path: Path) -> list[TokenEntry]:
    """The entries of the file ([] if there is none); malformed lines are left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise TokenError(f"cannot read {path}: {e}") from None
    return parse_entries(text)[0]


def add_token(path: Path, person: str, role: str, by: str) -> tuple[str, TokenEntry]:
    """Make a token for ``person``; returns it (to show once) and its entry."""
    if role not in ROLES:
        raise TokenError(f"invalid role {role!r}: {ROLE_NAMES}")
    person = check_person(person)
    token = new_token()
    with _locked(path) as entries:
        held = [e for e in entries if e.active and e.person == person]
        if held:
            raise TokenError(
                f"{person} already has a token ({held[0].id}, {held[0].role}): "
                f"revoke it first (`callcontrol token revoke {held[0].id}`)"
            )
        ids = {e.id for e in entries}
        token_id = secrets.token_hex(4)
        while token_id in ids:
            token_id = secrets.token_hex(4)
        entry = TokenEntry(token_id, person, role, digest(token), _now(), by)
        entries.append(entry)
    return token, entry


def revoke_token(path: Path, token_id: str, by: str) -> TokenEntry:
    """Revoke the token ``token_id`` at once (the daemon sees the file change)."""
    with _locked(path) as entries:
        for i, entry in enumerate(entries):
            if entry.id == token_id:
                if not entry.active:
                    raise TokenError(f"token {token_id} was already revoked ({entry.revoked_at})")
                entries[i] = replace(entry, revoked_at=_now(), revoked_by=by)
                return entries[i]
    raise TokenError(f"no token {token_id!r} (see `callcontrol token list`)")


def list_tokens(path: Path) -> list[TokenEntry]:
    """Every token's entry, oldest first (rewriting an old file's clear tokens as hashes)."""
    if not path.exists():
        return []
    with _locked(path) as entries:
        return list(entries)
