"""When wrong PINs lock a handset, for how long, and how long guessing a PIN then takes. Pure.

Wrong PINs count against the HANDSET they were keyed on, never against a prisoner: whoever
keys them, a prisoner's own calls from another handset are not blocked, and nobody learns
from a lockout whose PIN was guessed at. While a handset is locked no PIN keyed on it is
compared with anything: every PIN, right or wrong, gets the same refusal.

The rules (``LockoutPolicy`` in domain/pins.py holds the numbers):

* burst: ``failures`` wrong PINs within ``window`` (counted since the handset's last lockout
  or unlock) lock it. The n-th lockout since the last successful call lasts
  ``lockout * growth ** (n - 1)``, at most ``max_lockout``;
* day: at most ``daily_failures`` wrong PINs in any 24 hours (counted since the last unlock by
  staff): the one that reaches it locks the handset until the oldest of them is a day old. A
  prisoner who keys their own PIN between lockouts resets the escalation, not this cap, so the
  cap is what bounds a cellmate guessing at a neighbour's PIN.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from callcontrol.domain.pins import LockoutPolicy, pin_space

DAY = timedelta(days=1)
YEAR = timedelta(days=365.25)


@dataclass(frozen=True)
class LockState:
    """What the store keeps for one handset between calls."""

    locked_until: datetime | None = None
    level: int = 0  # lockouts since the last successful call on this handset
    counting_since: datetime | None = None  # burst: only wrong PINs after this count
    budget_since: datetime | None = None  # day cap: only wrong PINs after this count (unlock)

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def lockout_length(policy: LockoutPolicy, level: int) -> timedelta:
    """How long the ``level``-th lockout since the last successful call lasts (1-based)."""
    if level < 1:
        raise ValueError("the first lockout is level 1")
    base = policy.lockout.total_seconds()
    if policy.growth == 1 or base == 0:
        return policy.lockout
    cap = policy.max_lockout.total_seconds()
    # log-space first: growth ** (level - 1) overflows a float long before the level runs out
    if (level - 1) * math.log(policy.growth) >= math.log(cap / base):
        return policy.max_lockout
    return min(policy.max_lockout, timedelta(seconds=base * policy.growth ** (level - 1)))


def lockout_after_failure(
    failures: Sequence[datetime], now: datetime, policy: LockoutPolicy, state: LockState
) -> datetime | None:
    """When the handset unlocks again if the wrong PIN just keyed at ``now`` locks it, else None.

    ``failures`` are the handset's wrong PINs of the last day, this one included."""
    burst = [
        t
        for t in failures
        if t > now - policy.window and (state.counting_since is None or t > state.counting_since)
    ]
    until = None
    if len(burst) >= policy.failures:
        until = now + lockout_length(policy, state.level + 1)
    if policy.daily_failures:
        day = sorted(
            t
            for t in failures
            if t > now - DAY and (state.budget_since is None or t > state.budget_since)
        )
        if len(day) >= policy.daily_failures:
            release = day[-policy.daily_failures] + DAY
            until = release if until is None else max(until, release)
    return until


def after_lockout(state: LockState, now: datetime, until: datetime) -> LockState:
    """The handset's state once a lockout starts at ``now``."""
    return replace(state, locked_until=until, level=state.level + 1, counting_since=now)


@dataclass(frozen=True)
class GuessingEstimate:
    """How long guessing one prisoner's PIN on one handset takes on average, at the fastest
    pace the rules allow (a guess the instant the handset is free: no time for keying)."""

    pin_space: int  # the PINs `--generate-pin` can give
    guesses: float  # on average, to hit one of them: (pin_space + 1) / 2
    with_own_pin: timedelta  # a cellmate who keys their own PIN after each lockout
    without_own_pin: timedelta  # a guesser who never makes a successful call

    @property
    def fastest(self) -> timedelta:
        return min(self.with_own_pin, self.without_own_pin)

    @property
    def years(self) -> float:
        return self.fastest / YEAR


def time_to_guess(policy: LockoutPolicy, guesses: int, *, own_pin: bool) -> timedelta:
    """How long ``guesses`` wrong PINs take on one handset under ``policy`` at the fastest pace:
    each guess as soon as the handset is not locked; with ``own_pin`` the guesser also makes a
    successful call of their own at each unlock, which resets the escalation."""
    start = datetime(2000, 1, 1, tzinfo=UTC)
    now, state = start, LockState()
    recent: deque[datetime] = deque()
    for _ in range(guesses):
        if state.locked(now):
            assert state.locked_until is not None
            now = state.locked_until
            if own_pin:
                state = replace(state, level=0)
        recent.append(now)
        while recent and recent[0] <= now - DAY:
            recent.popleft()
        until = lockout_after_failure(recent, now, policy, state)
        if until is not None:
            state = after_lockout(state, now, until)
    return now - start


def guessing_estimate(policy: LockoutPolicy, digits: int = 4) -> GuessingEstimate:
    """The figure docs/security-pins.md shows: the average time to guess a generated PIN."""
    space = pin_space(digits)
    guesses = (space + 1) / 2
    n = math.ceil(guesses)
    return GuessingEstimate(
        pin_space=space,
        guesses=guesses,
        with_own_pin=time_to_guess(policy, n, own_pin=True),
        without_own_pin=time_to_guess(policy, n, own_pin=False),
    )
