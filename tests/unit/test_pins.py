from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcontrol.domain.pins import (
    LockoutPolicy,
    hash_pin,
    locked_until,
    pin_matches,
    valid_pin_format,
)

SECRET = b"site-secret"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
POLICY = LockoutPolicy()


def minutes(*offsets: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


@pytest.mark.parametrize("pin", ["0000", "1234", "9876"])
def test_valid_pin_format(pin: str) -> None:
    assert valid_pin_format(pin)


@pytest.mark.parametrize("pin", ["", "123", "12345", "12a4", " 123", "12 4", "١٢٣٤", "+123"])
def test_invalid_pin_format(pin: str) -> None:
    assert not valid_pin_format(pin)


def test_pin_format_length_is_configurable() -> None:
    assert valid_pin_format("123456", digits=6)
    assert not valid_pin_format("1234", digits=6)


def test_hash_has_version_prefix_and_is_deterministic() -> None:
    stored = hash_pin(SECRET, "A1234BC", "1234")
    assert stored.startswith("h1$")
    assert len(stored) == 3 + 64
    assert stored == hash_pin(SECRET, "A1234BC", "1234")


def test_same_pin_different_prisoners_different_hashes() -> None:
    assert hash_pin(SECRET, "A1234BC", "1234") != hash_pin(SECRET, "B5678DE", "1234")


def test_pin_matches_right_pin_only() -> None:
    stored = hash_pin(SECRET, "A1234BC", "1234")
    assert pin_matches(SECRET, "A1234BC", "1234", stored)
    assert not pin_matches(SECRET, "A1234BC", "1235", stored)


def test_pin_hash_is_bound_to_the_prisoner() -> None:
    stored = hash_pin(SECRET, "A1234BC", "1234")
    assert not pin_matches(SECRET, "B5678DE", "1234", stored)


def test_wrong_secret_does_not_match() -> None:
    stored = hash_pin(SECRET, "A1234BC", "1234")
    assert not pin_matches(b"another-secret", "A1234BC", "1234", stored)


def test_unknown_prefix_does_not_match() -> None:
    stored = hash_pin(SECRET, "A1234BC", "1234")
    assert not pin_matches(SECRET, "A1234BC", "1234", "h2$" + stored[3:])
    assert not pin_matches(SECRET, "A1234BC", "1234", stored[3:])
    assert not pin_matches(SECRET, "A1234BC", "1234", "")
    assert not pin_matches(SECRET, "A1234BC", "1234", "h1$é")


def test_no_failures_no_lock() -> None:
    assert locked_until([], T0, POLICY) is None


def test_four_failures_no_lock() -> None:
    assert locked_until(minutes(0, 1, 2, 3), T0 + timedelta(minutes=4), POLICY) is None


def test_five_failures_within_window_lock_for_fifteen_minutes_from_the_fifth() -> None:
    failures = minutes(0, 1, 2, 3, 4)
    assert locked_until(failures, T0 + timedelta(minutes=5), POLICY) == T0 + timedelta(minutes=19)


def test_five_failures_exactly_window_apart_lock() -> None:
    failures = minutes(0, 5, 10, 12, 15)
    assert locked_until(failures, T0 + timedelta(minutes=16), POLICY) == T0 + timedelta(minutes=30)


def test_five_failures_spread_over_twenty_minutes_no_lock() -> None:
    failures = minutes(0, 5, 10, 15, 20)
    assert locked_until(failures, T0 + timedelta(minutes=21), POLICY) is None


def test_lock_expires() -> None:
    failures = minutes(0, 1, 2, 3, 4)
    unlock = T0 + timedelta(minutes=19)
    assert locked_until(failures, unlock - timedelta(seconds=1), POLICY) == unlock
    assert locked_until(failures, unlock, POLICY) is None
    assert locked_until(failures, unlock + timedelta(hours=1), POLICY) is None


def test_unsorted_input() -> None:
    failures = minutes(4, 0, 3, 1, 2)
    assert locked_until(failures, T0 + timedelta(minutes=5), POLICY) == T0 + timedelta(minutes=19)


def test_any_run_of_five_counts_and_the_latest_lock_wins() -> None:
    # Spread-out early failures, then a tight run later: the tight run locks.
    failures = minutes(0, 30, 60, 61, 62, 63, 64, 65)
    # Runs ending at 64 and at 65 both lock; the latest ends at 65 + 15.
    assert locked_until(failures, T0 + timedelta(minutes=66), POLICY) == T0 + timedelta(minutes=80)


def test_custom_policy() -> None:
    policy = LockoutPolicy(failures=3, window=timedelta(minutes=1), lockout=timedelta(hours=1))
    failures = minutes(0, 0.5, 1)
    assert locked_until(failures, T0 + timedelta(minutes=2), policy) == T0 + timedelta(minutes=61)
    assert locked_until(minutes(0, 0.5, 1.5), T0 + timedelta(minutes=2), policy) is None


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LockoutPolicy(failures=0)
    with pytest.raises(ValueError):
        LockoutPolicy(lockout=timedelta(minutes=-1))
