"""Checkpoints of the recording chain: the line's one spelling, and the chain checked against
checkpoints (rewritten, cut short, forged, gone backwards)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcontrol.adapters.anchor import PublicKey, SigningKey
from callcontrol.domain.chain import GENESIS, entry_hash
from callcontrol.domain.checkpoints import Checkpoint, Found, check, due, parse_line, payload

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def chain(n: int, salt: str = "") -> list[str]:
    hashes, prev = [], GENESIS
    for i in range(n):
        prev = entry_hash(prev, f'{{"kind":"recording","n":{i}{salt}}}')
        hashes.append(prev)
    return hashes


@pytest.fixture(scope="module")
def key() -> SigningKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return SigningKey(Ed25519PrivateKey.generate())


def sign(key: SigningKey, hashes: list[str], n: int, at: datetime = T0) -> Found:
    head = hashes[n - 1] if n else GENESIS
    text = payload(n, head, at, key.key_id)
    return Found(f"test {n}", Checkpoint(n, head, at, key.key_id, key.sign(text)))


def test_line_round_trips_and_has_one_spelling(key: SigningKey) -> None:
    cp = sign(key, chain(3), 3).checkpoint
    line = cp.line()
    assert line.startswith("callcontrol-chain-checkpoint v1 entries=3 head=")
    assert parse_line(line + "\n") == cp
    for bad in (
        line.replace("entries=3", "entries=03"),
        line.replace("+00:00", "Z"),
        line.replace(" sig=", "  sig="),
        line[:-1],
        line + " extra",
    ):
        with pytest.raises(ValueError):
            parse_line(bad)


def test_payload_refuses_an_empty_chain_with_a_head(key: SigningKey) -> None:
    with pytest.raises(ValueError):
        payload(0, chain(1)[0], T0, key.key_id)
    with pytest.raises(ValueError):
        payload(1, GENESIS, T0, key.key_id)
    with pytest.raises(ValueError):
        payload(1, chain(1)[0], T0.replace(tzinfo=None), key.key_id)


def test_a_chain_that_extends_its_checkpoints_passes(key: SigningKey) -> None:
    hashes = chain(5)
    public = PublicKey(key.public)
    found = [sign(key, hashes, 0), sign(key, hashes, 2, T0 + timedelta(hours=1)),
             sign(key, hashes, 5, T0 + timedelta(hours=2))]  # fmt: skip
    assert check(found, hashes, public.signed) == []
    assert check(found, hashes + chain(7)[5:], public.signed) == []  # grown since


def test_a_rewritten_chain_fails(key: SigningKey) -> None:
    hashes = chain(4)
    found = [sign(key, hashes, 4)]
    rewritten = chain(4, salt=',"x":1')  # consistent links, other content
    [problem] = check(found, rewritten, PublicKey(key.public).signed)
    assert "entry 4 of the chain is not the one signed: the chain was rewritten" in problem


def test_a_tail_removed_fails(key: SigningKey) -> None:
    hashes = chain(4)
    [problem] = check([sign(key, hashes, 4)], hashes[:3], PublicKey(key.public).signed)
    assert "had 4 entries, it has 3 now: entries were removed from its end" in problem


def test_a_forged_or_altered_checkpoint_is_named_and_proves_nothing(key: SigningKey) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    hashes = chain(3)
    public = PublicKey(key.public)
    other = SigningKey(Ed25519PrivateKey.generate())
    forged = sign(other, hashes, 3)
    good = sign(key, hashes, 3).checkpoint
    altered = Found("altered", Checkpoint(2, hashes[1], good.at, good.key_id, good.signature))
    problems = check([forged, altered], hashes, public.signed)
    assert len(problems) == 2 and all("signature does not verify" in p for p in problems)


def test_checkpoints_going_backwards_are_named(key: SigningKey) -> None:
    hashes = chain(3)
    found = [sign(key, hashes, 3), sign(key, hashes, 2, T0 + timedelta(hours=1))]
    [problem] = check(found, hashes, PublicKey(key.public).signed)
    assert "fewer entries (2) than an earlier one" in problem


def test_due_when_the_head_moved_or_an_interval_passed(key: SigningKey) -> None:
    hashes = chain(2)
    last = sign(key, hashes, 2).checkpoint
    assert due(None, 0, GENESIS, T0, 3600)
    assert not due(last, 2, hashes[1], T0 + timedelta(minutes=59), 3600)
    assert due(last, 2, hashes[1], T0 + timedelta(hours=1), 3600)
    assert due(last, 3, chain(3)[2], T0 + timedelta(seconds=1), 3600)
