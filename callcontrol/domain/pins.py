"""PINs: their format, how they are stored and generated, and the lockout policy's settings.

A PIN is stored as an HMAC keyed with a site secret and salted with the prisoner's
prison number, so the same PIN for two prisoners gives two different hashes and a
copied table is useless without the secret.

The secret can be replaced without losing every PIN (docs/operations.md): the stored form
names its key (``h2$KEYID$HMAC``, KEYID a fingerprint of the secret that reveals nothing of
it), the previous secrets are kept for checking only (PinKeys), and a PIN checked with a
previous secret is stored again with the current one (``needs_rehash``). Hashes made before
key ids (``h1$HMAC``) are checked against every secret we have, and rehashed the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

LEGACY_PREFIX = "h1$"  # version 1: hex HMAC-SHA256(secret, prison_number + ":" + pin)
HASH_PREFIX = "h2$"  # version 2: "h2$" + key_id(secret) + "$" + the same HMAC
LEGACY = "h1"  # what key_of says of a version 1 hash: made with a key we cannot name


@dataclass(frozen=True)
class PinKeys:
    """The PIN secret in use, and the previous ones (newest first), kept to check PINs hashed
    before a rotation until each is stored again with the current secret."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def by_id(self) -> dict[str, bytes]:
        return {key_id(k): k for k in (*reversed(self.previous), self.current)}


Keys = bytes | PinKeys  # a PIN secret alone, or with the previous ones


def as_keys(keys: Keys) -> PinKeys:
    return keys if isinstance(keys, PinKeys) else PinKeys(keys)


def key_id(secret: bytes) -> str:
    """A short public name for a secret (8 hex digits of a hash of it, domain-separated)."""
    return hashlib.sha256(b"callcontrol PIN key id\0" + secret).hexdigest()[:8]


def valid_pin_format(pin: str, digits: int = 4) -> bool:
    """True when ``pin`` is exactly ``digits`` ASCII digits."""
    return isinstance(pin, str) and len(pin) == digits and pin.isascii() and pin.isdigit()


def _hmac(secret: bytes, prison_number: str, pin: str) -> str:
    return hmac.new(secret, f"{prison_number}:{pin}".encode(), hashlib.sha256).hexdigest()


def hash_pin(secret: bytes, prison_number: str, pin: str) -> str:
    """The stored form of a prisoner's PIN, made with (and naming) ``secret``."""
    return f"{HASH_PREFIX}{key_id(secret)}${_hmac(secret, prison_number, pin)}"


def key_of(stored: str) -> str | None:
    """The key id a stored hash names; LEGACY for a version 1 hash; None if not a PIN hash."""
    if stored.startswith(LEGACY_PREFIX):
        return LEGACY
    if stored.startswith(HASH_PREFIX):
        kid, sep, _ = stored[len(HASH_PREFIX) :].partition("$")
        return kid if sep and len(kid) == 8 else None
    return None


def pin_matches(keys: bytes | PinKeys, prison_number: str, pin: str, stored: str) -> bool:
    """Whether ``pin`` is this prisoner's PIN; constant-time. False for an unknown scheme or a
    key we no longer have."""
    ring = as_keys(keys)
    kid = key_of(stored)
    if kid == LEGACY:
        candidates = [LEGACY_PREFIX + _hmac(k, prison_number, pin) for k in ring.by_id().values()]
    elif kid is not None and kid in ring.by_id():
        candidates = [hash_pin(ring.by_id()[kid], prison_number, pin)]
    else:
        return False
    found = False
    for expected in candidates:  # every candidate compared: no early exit
        found |= hmac.compare_digest(expected.encode(), stored.encode())
    return found


def needs_rehash(keys: bytes | PinKeys, stored: str) -> bool:
    """A hash not made with the current secret: store the PIN again once it has matched."""
    return key_of(stored) != key_id(as_keys(keys).current)


def key_usage(keys: bytes | PinKeys, hashes: Iterable[str]) -> Counter[str]:
    """How many hashes use each kind of key: "current", "previous" (kept), "legacy" (version 1,
    key unknown until the PIN is next keyed), "lost" (a key we no longer have: those PINs
    cannot match; set them again)."""
    ring = as_keys(keys)
    current, kept = key_id(ring.current), ring.by_id()
    counts: Counter[str] = Counter()
    for stored in hashes:
        kid = key_of(stored)
        if kid == current:
            counts["current"] += 1
        elif kid == LEGACY:
            counts["legacy"] += 1
        elif kid in kept:
            counts["previous"] += 1
        else:
            counts["lost"] += 1
    return counts


def weak_pin(pin: str) -> bool:
    """A PIN too easy to guess first, or to key: a digit next to itself (``1123``: SIPp and some
    handsets drop one of two identical digits in a row, and ``1111`` is the first guess), or a
    straight run up or down (``1234``, ``9876``)."""
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:], strict=False)}
    return 0 in steps or steps in ({1}, {-1})


def pin_space(digits: int = 4) -> int:
    """How many PINs ``generate_pin`` can give: no digit next to itself (10 * 9^(n-1)), less
    the straight runs up and down (11 - n of each, for 2 <= n <= 10)."""
    if digits < 1:
        raise ValueError("a PIN has at least one digit")
    runs = 2 * max(0, 11 - digits) if digits >= 2 else 0
    return 10 * 9 ** (digits - 1) - runs


def generate_pin(digits: int = 4) -> str:
    """A random PIN (from the operating system's CSPRNG) that is not weak."""
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(digits))
        if not weak_pin(pin):
            return pin


@dataclass(frozen=True)
class LockoutPolicy:
    """How wrong PINs keyed on one handset lock that handset (see domain/pin_lockout.py).

    ``failures`` wrong PINs within ``window`` lock it; the n-th lockout since the last
    successful call lasts ``lockout * growth ** (n - 1)``, at most ``max_lockout``. Whatever the
    pace, no more than ``daily_failures`` wrong PINs are accepted in any 24 hours (0: no such
    cap): the next one locks the handset until the oldest of them is a day old.
    """

    failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    growth: float = 2.0
    max_lockout: timedelta = timedelta(days=1)
    daily_failures: int = 8

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("failures must be at least 1")
        if self.window < timedelta(0) or self.lockout < timedelta(0):
            raise ValueError("window and lockout must not be negative")
        if not self.growth >= 1:
            raise ValueError("growth must be at least 1 (1: every lockout as long)")
        if self.max_lockout < self.lockout:
            raise ValueError("max_lockout must not be shorter than lockout")
        if self.daily_failures < 0:
            raise ValueError("daily_failures must not be negative (0: no daily cap)")
