"""PINs: their format, how they are stored and generated, and the lockout policy's settings.

A PIN is stored as an HMAC keyed with a site secret and salted with the prisoner's
prison number, so the same PIN for two prisoners gives two different hashes and a
copied table is useless without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

HASH_PREFIX = "h1$"  # version 1: hex HMAC-SHA256(secret, prison_number + ":" + pin)


def valid_pin_format(pin: str, digits: int = 4) -> bool:
    """True when ``pin`` is exactly ``digits`` ASCII digits."""
    return isinstance(pin, str) and len(pin) == digits and pin.isascii() and pin.isdigit()


def hash_pin(secret: bytes, prison_number: str, pin: str) -> str:
    """The stored form of a prisoner's PIN."""
    message = f"{prison_number}:{pin}".encode()
    return HASH_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def pin_matches(secret: bytes, prison_number: str, pin: str, stored: str) -> bool:
    """Whether ``pin`` is this prisoner's PIN; constant-time. False for an unknown scheme."""
    if not stored.startswith(HASH_PREFIX):
        return False
    expected = hash_pin(secret, prison_number, pin)
    return hmac.compare_digest(expected.encode(), stored.encode())


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
