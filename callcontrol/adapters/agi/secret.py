"""The FastAGI shared secret: a file that the daemon and Asterisk's configuration both read.

Asterisk proves a FastAGI request is its own by the first path segment of the URL: the rendered
dialplan's ``CC_AGI_URL`` is ``agi://HOST:PORT/<secret>``, so every ``AGI(${CC_AGI_URL}/route)``
arrives with ``agi_network_script: <secret>/route``. Without it any local process could connect
to the FastAGI port and, for instance, report the end of a live call.

The file holds one line: letters, digits, ``_`` or ``-``, at least 32 of them, never beginning
with ``-``. It is created with mode 0640 (the daemon's user, and the group Asterisk runs as if
one is named), and refused when anyone else may read it or the group may write it.
"""

from __future__ import annotations

import grp
import os
import re
import secrets
import stat
from pathlib import Path

SECRET_FORMAT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{31,255}")
FILE_MODE = 0o640
# Others may not read, write or search it; the group may not write it.
_TOO_OPEN = stat.S_IRWXO | stat.S_IWGRP


class AgiSecretError(Exception):
    """The secret file is missing, unreadable, too open or malformed; the message says which."""


def generate_secret() -> str:
    """64 hex digits (256 bits): safe in a URL path, an AGI() argument and a command line's
    argument position (it cannot begin with ``-``)."""
    return secrets.token_hex(32)


def create_secret_file(path: Path, group: str = "") -> bool:
    """Create ``path`` with a new secret unless it exists; True when it was created.

    ``group`` (a group name) becomes the file's group, so that Asterisk's user can read it;
    empty: the creating process's group.
    """
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise AgiSecretError(f"[agi] secret_group {group!r} is not a group here") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        if gid != -1:
            os.fchown(fd, -1, gid)
        os.write(fd, (generate_secret() + "\n").encode())
    finally:
        os.close(fd)
    return True


def read_secret_file(path: Path) -> str:
    """The secret in ``path``; AgiSecretError (one line, never the secret) if it cannot serve."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise AgiSecretError(
            f"FastAGI secret file {path} is missing: make it and Asterisk's CC_AGI_URL with "
            "`callcontrol agi secret --create --globals FILE` (the lab makes its own)"
        ) from None
    except OSError as e:
        raise AgiSecretError(f"FastAGI secret file {path} cannot be read: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise AgiSecretError(f"FastAGI secret file {path} is not a regular file")
        if mode & _TOO_OPEN:
            raise AgiSecretError(
                f"FastAGI secret file {path} has mode {stat.S_IMODE(mode):04o}: other users "
                f"could read or change it; chmod {FILE_MODE:04o} it"
            )
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    value = data.decode("ascii", errors="replace").strip()
    if not SECRET_FORMAT.fullmatch(value):
        raise AgiSecretError(
            f"FastAGI secret in {path} is malformed: one line of at least 32 letters, digits, "
            "'_' or '-', not beginning with '-'"
        )
    return value


def load_secret(path: Path, *, create: bool = False, group: str = "") -> str:
    """Read the secret, creating the file first when ``create`` (the lab) and it is missing."""
    if create:
        create_secret_file(path, group)
    return read_secret_file(path)
