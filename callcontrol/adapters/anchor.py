"""The recording chain's anchor outside the database: the signing key and the checkpoints file.

The key is Ed25519 (``cryptography``), kept in a file of its own ([recording] signing_key_file,
mode 0600, created on first use): the database never holds it, so whoever owns the database
cannot sign a checkpoint of a chain they rewrote. The public key (``callcontrol recordings
export-key``) is what ``recordings verify --public-key`` trusts; keep a copy off the host.

Checkpoints are appended, one line each, to [recording] checkpoints_file: opened with O_APPEND
for every line and flushed to disk (fsync) before the call returns, so a line is either whole on
disk or not there. The file is meant to be shipped off the host as it grows (rsync, or syslog:
see ``recordings export-key --help``), where the database's owner cannot reach it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from callcontrol.domain.checkpoints import Checkpoint, Found, parse_line

# cryptography is imported where it is used: every `callcontrol` command loads this module, and
# most never sign or verify anything.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


class AnchorError(Exception):
    """The key or the checkpoints file cannot be used; the message says why, for the operator."""


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class SigningKey:
    """The private key that signs checkpoints."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def load(cls, path: Path, create: bool = False) -> SigningKey:
        """The key in ``path``; with ``create``, a new one is made there (0600) if it is missing.

        A key file that others than its owner may read or write is refused: a key anyone on
        the host can read anchors nothing.
        """
        path = Path(path)
        if create and not path.exists():
            _create(path)
        try:
            info = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            raise AnchorError(
                f"chain signing key {path} is missing: the daemon creates it on first start "
                "([recording] signing_key_file)"
            ) from None
        except OSError as e:
            raise AnchorError(f"chain signing key {path}: {e.strerror}") from None
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if stat.S_IMODE(info.st_mode) & 0o077:
            raise AnchorError(
                f"chain signing key {path} may be read or written by others than its owner "
                f"(mode {stat.S_IMODE(info.st_mode):04o}): make it 0600 (chmod 600)"
            )
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise AnchorError(f"chain signing key {path} is not a PEM private key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise AnchorError(f"chain signing key {path} is not an Ed25519 key")
        return cls(private)

    def sign(self, payload: str) -> str:
        return self._private.sign(payload.encode()).hex()


def _create(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # made meanwhile by another process: use theirs
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


class PublicKey:
    """The public key that verifies checkpoints (from ``recordings export-key``)."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self.public = public
        self.key_id = key_id(public)

    @classmethod
    def load(cls, path: Path) -> PublicKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise AnchorError(f"public key {path}: {e.strerror}") from None
        try:
            public = serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            raise AnchorError(f"public key {path} is not a PEM public key") from None
        if not isinstance(public, Ed25519PublicKey):
            raise AnchorError(f"public key {path} is not an Ed25519 key")
        return cls(public)

    def signed(self, cp: Checkpoint) -> bool:
        """Whether the checkpoint's signature verifies with this key."""
        from cryptography.exceptions import InvalidSignature

        if cp.key_id != self.key_id:
            return False
        try:
            self.public.verify(bytes.fromhex(cp.signature), cp.payload().encode())
        except (InvalidSignature, ValueError):
            return False
        return True


# --- the checkpoints file ----------------------------------------------------------------------


def append(path: Path, cp: Checkpoint) -> None:
    """Append a checkpoint's line to the file (created 0640 if missing), durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        line = (cp.line() + "\n").encode()
        if os.write(fd, line) != len(line):
            raise AnchorError(f"checkpoints file {path}: short write")
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> Iterator[Found | str]:
    """The checkpoints in a file, in order; a line that is not one comes as a problem (text)."""
    path = Path(path)
    try:
        f = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise AnchorError(f"checkpoints file {path} does not exist") from None
    except OSError as e:
        raise AnchorError(f"checkpoints file {path}: {e.strerror}") from None
    with f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            if not line.endswith("\n"):
                yield f"checkpoint ({where}): incomplete last line (still being written?)"
                continue
            try:
                yield Found(where, parse_line(line))
            except ValueError as e:
                yield f"checkpoint ({where}): unreadable: {e}"
