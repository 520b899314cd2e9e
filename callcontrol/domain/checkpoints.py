"""Signed checkpoints of the recording chain's head (pure rules, no I/O, no cryptography).

The hash chain (chain.py) shows any change to one entry, but whoever owns the database can
rewrite the whole chain consistently, or cut entries off its end together with the head row,
and the links still verify. A checkpoint anchors the chain outside the database: "the chain had
N entries and its N-th entry's hash was H at time T", signed with a key the database never
holds (adapters/anchor.py), and kept in an append-only file that can be shipped off the host.

Later, the chain in the database must still *extend* every checkpoint: at least N entries, and
the N-th entry still hashing to H. A rewritten chain fails the hash; a removed tail fails the
length. A forged checkpoint fails its signature.

The line is plain text, one checkpoint a line, so that it can go through syslog or rsync::

    callcontrol-chain-checkpoint v1 entries=12 head=<64 hex> at=2027-03-01T12:00:00.000000+00:00 \
key=<16 hex> sig=<128 hex>

The signature covers everything before `` sig=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from callcontrol.domain.chain import GENESIS

MAGIC = "callcontrol-chain-checkpoint"
VERSION = "v1"
_LINE = re.compile(
    rf"^{MAGIC} {VERSION} entries=(?P<entries>0|[1-9][0-9]{{0,18}}) head=(?P<head>[0-9a-f]{{64}}) "
    r"at=(?P<at>\S+) key=(?P<key>[0-9a-f]{16}) sig=(?P<sig>[0-9a-f]{128})$"
)


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at a moment, and the signature over it."""

    entries: int  # how many entries the chain had
    head: str  # the hash of the last of them (GENESIS for an empty chain)
    at: datetime  # when, UTC
    key_id: str  # which key signed it (key_id() of its public key)
    signature: str  # Ed25519 over payload(), hex

    def payload(self) -> str:
        """The text that is signed."""
        return payload(self.entries, self.head, self.at, self.key_id)

    def line(self) -> str:
        """The checkpoint as one line of the checkpoints file (without the newline)."""
        return f"{self.payload()} sig={self.signature}"


def iso(at: datetime) -> str:
    """A checkpoint's time: ISO 8601, UTC, to the microsecond (the one spelling that is signed)."""
    if at.tzinfo is None:
        raise ValueError("a checkpoint's time must be aware (UTC)")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def payload(entries: int, head: str, at: datetime, key_id: str) -> str:
    """The canonical text of a checkpoint, the part that is signed."""
    if entries < 0 or not re.fullmatch(r"[0-9a-f]{64}", head):
        raise ValueError("a checkpoint needs a count of entries and a SHA-256 head")
    if (entries == 0) != (head == GENESIS):
        raise ValueError("an empty chain's head is the genesis, and only its")
    return f"{MAGIC} {VERSION} entries={entries} head={head} at={iso(at)} key={key_id}"


def parse_line(line: str) -> Checkpoint:
    """A checkpoint from its line; ValueError naming what is wrong."""
    m = _LINE.match(line.rstrip("\r\n"))
    if m is None:
        raise ValueError("not a checkpoint line")
    try:
        at = datetime.fromisoformat(m["at"])
    except ValueError:
        raise ValueError(f"not a time: {m['at']!r}") from None
    if at.tzinfo is None:
        raise ValueError("its time has no time zone")
    cp = Checkpoint(int(m["entries"]), m["head"], at, m["key"], m["sig"])
    if cp.line() != line.rstrip("\r\n"):  # one spelling only: what was signed is what is read
        raise ValueError("not in canonical form")
    return cp


@dataclass(frozen=True)
class Found:
    """A checkpoint as read, and where from (for the operator's report)."""

    where: str  # "file F line N" or "database row N"
    checkpoint: Checkpoint


def check(
    checkpoints: Sequence[Found],
    chain_hashes: Sequence[str],
    signed: Callable[[Checkpoint], bool],
) -> list[str]:
    """Every problem of the chain against the checkpoints; [] when the chain extends them all.

    ``chain_hashes`` are the entries' hashes in the chain's order (the first entry first);
    ``signed`` says whether a checkpoint's signature verifies with the trusted public key.
    Checkpoints whose signature does not verify are reported and otherwise ignored: they prove
    nothing. The good ones must not go backwards in time (fewer entries later).
    """
    problems: list[str] = []
    good: list[Found] = []
    for f in checkpoints:
        if signed(f.checkpoint):
            good.append(f)
        else:
            problems.append(
                f"checkpoint ({f.where}, at {iso(f.checkpoint.at)}): its signature does not "
                "verify with the public key: forged, altered or signed by another key"
            )
    length = len(chain_hashes)
    for f in good:
        cp, label = f.checkpoint, f"checkpoint ({f.where}, at {iso(f.checkpoint.at)})"
        if cp.entries > length:
            problems.append(
                f"{label}: the chain had {cp.entries} entries, it has {length} now: entries "
                "were removed from its end"
            )
        elif cp.entries and chain_hashes[cp.entries - 1] != cp.head:
            problems.append(
                f"{label}: entry {cp.entries} of the chain is not the one signed: the chain was "
                "rewritten"
            )
    ordered = sorted(good, key=lambda f: f.checkpoint.at)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.checkpoint.entries < before.checkpoint.entries:
            problems.append(
                f"checkpoint ({after.where}, at {iso(after.checkpoint.at)}) has fewer entries "
                f"({after.checkpoint.entries}) than an earlier one ({before.where}: "
                f"{before.checkpoint.entries}): the chain went backwards"
            )
    return problems


def due(last: Checkpoint | None, entries: int, head: str, now: datetime, interval_s: float) -> bool:
    """Whether a new checkpoint should be written: none yet, the head moved, or the last one is
    ``interval_s`` old (a checkpoint at least that often proves the chain had not moved)."""
    if last is None or (last.entries, last.head) != (entries, head):
        return True
    return (now - last.at).total_seconds() >= interval_s
