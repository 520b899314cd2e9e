"""Render the cells' PJSIP endpoints (pjsip_cells.conf) from the database's cells.

One endpoint, auth and aor per enabled handset, using the templates in asterisk-conf/pjsip.conf.
A disabled handset is left out, so Asterisk no longer knows it once PJSIP is reloaded.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SAFE_SECRET = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True)
class CellEndpoint:
    cell: str
    sip_username: str
    sip_password: str


def render(cells: Iterable[CellEndpoint]) -> str:
    lines = [
        "; Written by `callcontrol asterisk sync` from the database: do not edit by hand.",
        "; One endpoint per enabled cell handset; disabled handsets are left out.",
        "",
    ]
    count = 0
    for c in sorted(cells, key=lambda c: c.sip_username):
        if not _SAFE_NAME.match(c.sip_username):
            raise ValueError(f"cell {c.cell}: SIP username {c.sip_username!r} is not safe")
        if not _SAFE_SECRET.match(c.sip_password) or any(ch in c.sip_password for ch in ";#"):
            raise ValueError(f"cell {c.cell}: SIP password has characters pjsip.conf cannot hold")
        u = c.sip_username
        lines += [
            f"; cell {c.cell}",
            f"[{u}](cell-endpoint)",
            f"auth = {u}-auth",
            f"aors = {u}",
            "",
            f"[{u}-auth](cell-auth)",
            f"username = {u}",
            f"password = {c.sip_password}",
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
