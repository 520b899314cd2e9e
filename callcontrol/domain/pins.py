"""PINs: their format, how they are stored, and when too many wrong ones lock them.

A PIN is stored as an HMAC keyed with a site secret and salted with the prisoner's
prison number, so the same PIN for two prisoners gives two different hashes and a
copied table is useless without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True)
class LockoutPolicy:
    """``failures`` wrong PINs within ``window`` lock the PIN for ``lockout``."""

    failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("failures must be at least 1")
        if self.window < timedelta(0) or self.lockout < timedelta(0):
            raise ValueError("window and lockout must not be negative")


def locked_until(
    failure_times: Sequence[datetime], now: datetime, policy: LockoutPolicy
) -> datetime | None:
    """When the PIN unlocks, or None if it is not locked at ``now``.

    Any run of ``policy.failures`` consecutive failures whose first and last are at most
    ``policy.window`` apart locks the PIN until the last of them plus ``policy.lockout``.
    The latest such time counts. ``failure_times`` may be in any order.
    """
    times = sorted(failure_times)
    n = policy.failures
    latest: datetime | None = None
    for i in range(len(times) - n + 1):
        first, last = times[i], times[i + n - 1]
        if last - first <= policy.window:
            until = last + policy.lockout
            if latest is None or until > latest:
                latest = until
    if latest is not None and latest > now:
        return latest
    return None
