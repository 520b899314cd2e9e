"""SIP digest credentials: what the database keeps instead of a handset's password.

A handset authenticates with HTTP digest (RFC 2617/3261): it proves it knows
HA1 = MD5(username:realm:password) without sending the password. Asterisk needs only HA1
(PJSIP's ``md5_cred``) to check it, so HA1 is all that is stored and rendered into
pjsip_cells.conf; the password itself is shown once, when it is made.

What this protects, honestly: a copy of the database (a backup, a leaked dump) no longer holds
passwords that can be tried elsewhere, or read back to configure another phone for the same
realm... except that HA1 is itself enough to answer a digest challenge for this username and
realm (that is how digest works): someone holding the hashes can still impersonate a handset
to this Asterisk (and then still needs a prisoner's PIN to make a call). The realm is part of
the hash, so it is fixed per cell and written into the rendered auth: a realm that changed
would make every stored hash useless.
"""

from __future__ import annotations

import hashlib
import re

REALM = "callcontrol"
_REALM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MD5_HEX = re.compile(r"[0-9a-f]{32}")


def valid_realm(realm: str) -> bool:
    """A realm pjsip.conf can hold without quoting."""
    return bool(_REALM.fullmatch(realm))


def md5_cred(username: str, realm: str, password: str) -> str:
    """HA1 = MD5(username:realm:password), in lower-case hex, as PJSIP's md5_cred wants."""
    if ":" in username or ":" in realm:
        raise ValueError("a SIP username or realm cannot contain ':'")
    text = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest()
