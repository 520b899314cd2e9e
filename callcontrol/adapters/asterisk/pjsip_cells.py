"""Render the cells' PJSIP endpoints (pjsip_cells.conf) from the database's cells.

One endpoint, auth and aor per enabled handset, using the templates in data/asterisk/pjsip.conf.
A disabled handset is left out, so Asterisk no longer knows it once PJSIP is reloaded.

Each auth carries the handset's digest hash (``md5_cred``, with ``auth_type = md5``), never a
password: the database has none. The realm is written out, because the hash was made with it
and PJSIP would otherwise challenge with its default realm ("asterisk"), for which the hash is
wrong. (Asterisk 22 reads ``md5_cred`` as ``password_digest = MD5:...``; MD5 is its default
and only digest algorithm offered to handsets unless configured otherwise.)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The file's name: pjsip.conf includes it from Asterisk's configuration folder.
CELLS_CONF = "pjsip_cells.conf"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SAFE_REALM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class CellEndpoint:
    cell: str
    sip_username: str
    sip_realm: str
    sip_md5_cred: str


def render(cells: Iterable[CellEndpoint]) -> str:
    lines = [
        "; Written by `callcontrol asterisk sync` from the database: do not edit by hand.",
        "; One endpoint per enabled cell handset; disabled handsets are left out.",
        "; Digest hashes only (md5_cred = MD5(username:realm:password)), no passwords.",
        "",
    ]
    count = 0
    for c in sorted(cells, key=lambda c: c.sip_username):
        if not _SAFE_NAME.match(c.sip_username):
            raise ValueError(f"cell {c.cell}: SIP username {c.sip_username!r} is not safe")
        if not _SAFE_REALM.match(c.sip_realm):
            raise ValueError(f"cell {c.cell}: SIP realm {c.sip_realm!r} is not safe")
        if not _MD5_HEX.match(c.sip_md5_cred):
            raise ValueError(f"cell {c.cell}: SIP credential is not an MD5 digest")
        u = c.sip_username
        lines += [
            f"; cell {c.cell}",
            f"[{u}](cell-endpoint)",
            f"auth = {u}-auth",
            f"aors = {u}",
            "",
            f"[{u}-auth](cell-auth)",
            f"username = {u}",
            f"realm = {c.sip_realm}",
            f"md5_cred = {c.sip_md5_cred}",
            "",
            f"[{u}](cell-aor)",
            "",
        ]
        count += 1
    lines.append(f"; {count} handset(s)")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (mode 0640) unless it already holds it. True if changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
