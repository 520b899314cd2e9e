"""The kinds of call a load places, how often each comes, and what each must end as. Pure."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    APPROVED = "approved"  # an approved social contact, who accepts: connected, billed, recorded
    UNAPPROVED = "unapproved"  # a number not on the prisoner's list: refused
    WRONG_PIN = "wrong_pin"  # three wrong PINs: refused
    PRIVILEGED = "privileged"  # an approved legal contact: connected, free, never recorded
    BUSY = "busy"  # an approved contact whose line is busy: not connected, free
    NOANSWER = "noanswer"  # an approved contact who never answers: not connected, free
    SHORT_CREDIT = "short_credit"  # a prisoner with 2p calls a mobile: refused


# Roughly what a prison's day looks like: most calls go through.
DEFAULT_MIX: dict[Kind, float] = {
    Kind.APPROVED: 70,
    Kind.UNAPPROVED: 8,
    Kind.WRONG_PIN: 4,
    Kind.PRIVILEGED: 6,
    Kind.BUSY: 5,
    Kind.NOANSWER: 4,
    Kind.SHORT_CREDIT: 3,
}


@dataclass(frozen=True)
class Expectation:
    """What the daemon's records must say about a call of one kind."""

    decision: str  # allow | refuse
    reason: str  # the decision's reason
    bridged: bool  # accepted by the called party and talked
    recorded: bool  # has a verified recording
    charged: bool  # costs money (a connected, non-privileged call)
    dial_statuses: tuple[str, ...] = ()  # for an allowed call that was never bridged
    outcome: str = ""  # connected | refused | unanswered: the summary's class

    @property
    def reaches_called_party(self) -> bool:
        return self.decision == "allow"


EXPECTED: dict[Kind, Expectation] = {
    Kind.APPROVED: Expectation("allow", "approved_contact", True, True, True, (), "connected"),
    Kind.PRIVILEGED: Expectation("allow", "approved_contact", True, False, False, (), "connected"),
    Kind.BUSY: Expectation(
        "allow", "approved_contact", False, False, False, ("BUSY",), "unanswered"
    ),
    Kind.NOANSWER: Expectation(
        "allow", "approved_contact", False, False, False, ("NOANSWER", "CANCEL"), "unanswered"
    ),
    Kind.UNAPPROVED: Expectation("refuse", "not_approved", False, False, False, (), "refused"),
    Kind.WRONG_PIN: Expectation("refuse", "wrong_pin", False, False, False, (), "refused"),
    Kind.SHORT_CREDIT: Expectation(
        "refuse", "insufficient_credit", False, False, False, (), "refused"
    ),
}


class MixError(ValueError):
    """A mix that cannot be used; the message says why."""


def parse_mix(text: str, source: str = "the mix") -> dict[Kind, float]:
    """A mix from TOML text: ``kind = weight`` lines (relative weights, 0 or more).

    Kinds left out get 0. Example::

        approved = 80
        unapproved = 10
        busy = 10
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MixError(f"{source} is not valid TOML: {e}") from None
    if isinstance(data.get("mix"), dict) and len(data) == 1:
        data = data["mix"]
    return check_mix(data, source)


def check_mix(data: Mapping[str, object], source: str = "the mix") -> dict[Kind, float]:
    known = {k.value: k for k in Kind}
    mix: dict[Kind, float] = {k: 0.0 for k in Kind}
    for key, value in data.items():
        if key not in known:
            raise MixError(f"{source}: unknown kind of call {key!r} (known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MixError(f"{source}: the weight of {key} must be a number, not {value!r}")
        if value < 0 or value != value or value == float("inf"):
            raise MixError(f"{source}: the weight of {key} must be 0 or more, not {value}")
        mix[known[key]] = float(value)
    if sum(mix.values()) <= 0:
        raise MixError(f"{source}: every weight is 0; give at least one kind a weight")
    return mix


def sequence(mix: Mapping[Kind, float], calls: int) -> list[Kind]:
    """``calls`` kinds in the proportions of ``mix``, spread evenly (smooth weighted round
    robin, the same every time): 70/30 over 10 calls gives exactly 7 and 3, interleaved."""
    if calls < 0:
        raise MixError("the number of calls cannot be negative")
    weights = [(k, w) for k, w in mix.items() if w > 0]
    total = sum(w for _, w in weights)
    if total <= 0:
        raise MixError("every weight is 0")
    current = {k: 0.0 for k, _ in weights}
    out: list[Kind] = []
    for _ in range(calls):
        for k, w in weights:
            current[k] += w
        best = max(weights, key=lambda kw: current[kw[0]])[0]
        current[best] -= total
        out.append(best)
    return out


def describe(mix: Mapping[Kind, float]) -> str:
    total = sum(mix.values())
    return ", ".join(f"{k} {w / total:.0%}" for k, w in mix.items() if w > 0)
