from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcontrol.config import ConfigError, Settings, SiteSettings
from callcontrol.domain.pin_lockout import (
    LockState,
    guessing_estimate,
    lockout_after_failure,
    lockout_length,
)
from callcontrol.domain.pins import (
    LockoutPolicy,
    generate_pin,
    hash_pin,
    key_id,
    pin_matches,
    pin_space,
    valid_pin_format,
    weak_pin,
)
from callcontrol.wiring import lockout_policy

REPO_ROOT = Path(__file__).resolve().parents[2]

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
    assert stored.startswith("h2$" + key_id(SECRET) + "$")  # the key it was made with
    assert len(stored) == 3 + 8 + 1 + 64
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
    assert not pin_matches(SECRET, "A1234BC", "1234", "h9$" + stored[3:])
    assert not pin_matches(SECRET, "A1234BC", "1234", stored[3:])
    assert not pin_matches(SECRET, "A1234BC", "1234", "")
    assert not pin_matches(SECRET, "A1234BC", "1234", "h1$é")


def after(failures: list[datetime], state: LockState | None = None) -> datetime | None:
    """The lockout the last of ``failures`` (keyed at its time) starts, under the defaults."""
    return lockout_after_failure(failures, max(failures), POLICY, state or LockState())


def test_four_failures_no_lock() -> None:
    assert after(minutes(0, 1, 2, 3)) is None


def test_the_fifth_failure_within_the_window_locks_for_fifteen_minutes() -> None:
    assert after(minutes(0, 1, 2, 3, 4)) == T0 + timedelta(minutes=19)
    assert after(minutes(0, 5, 10, 12, 14.9)) == T0 + timedelta(minutes=29.9)


def test_five_failures_spread_wider_than_the_window_do_not_lock() -> None:
    assert after(minutes(0, 5, 10, 15, 20)) is None


def test_failures_before_the_last_lockout_or_unlock_count_no_more() -> None:
    since = LockState(counting_since=T0 + timedelta(minutes=2))
    assert after(minutes(0, 1, 2, 3, 4), since) is None


def test_the_lockout_grows_with_the_level_up_to_its_cap() -> None:
    assert [lockout_length(POLICY, n) for n in (1, 2, 3, 7, 8, 9, 10_000)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=16),
        timedelta(days=1),
        timedelta(days=1),
        timedelta(days=1),
    ]
    assert after(minutes(0, 1, 2, 3, 4), LockState(level=2)) == T0 + timedelta(hours=1, minutes=4)
    flat = LockoutPolicy(growth=1)
    assert lockout_length(flat, 50) == timedelta(minutes=15)


def test_the_daily_cap_counts_every_wrong_pin_of_the_day() -> None:
    # Eight wrong PINs spread out (never five within 15 minutes): the eighth locks the handset
    # until the first of them is a day old.
    failures = minutes(0, 60, 120, 180, 240, 300, 360, 420)
    assert after(failures[:7]) is None
    assert after(failures) == T0 + timedelta(days=1)
    # After an unlock by staff they count no more.
    assert after(failures, LockState(budget_since=T0 + timedelta(minutes=30))) is None
    assert (
        lockout_after_failure(failures, failures[-1], LockoutPolicy(daily_failures=0), LockState())
        is None
    )


def test_policy_rejects_nonsense() -> None:
    for bad in (
        {"failures": 0},
        {"lockout": timedelta(minutes=-1)},
        {"growth": 0.5},
        {"max_lockout": timedelta(minutes=1)},
        {"daily_failures": -1},
    ):
        with pytest.raises(ValueError):
            LockoutPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("pin", ["1111", "1123", "1233", "1234", "4321", "0123", "9876", "6789"])
def test_weak_pins(pin: str) -> None:
    assert weak_pin(pin)


@pytest.mark.parametrize("pin", ["1357", "2468", "8901", "1324", "9870", "0102"])
def test_not_weak_pins(pin: str) -> None:
    assert not weak_pin(pin)


def test_pin_space_counts_the_pins_generate_pin_can_give() -> None:
    for digits in (2, 4, 5):
        strong = sum(1 for n in range(10**digits) if not weak_pin(f"{n:0{digits}d}"))
        assert pin_space(digits) == strong


def test_generated_pins_are_strong_and_vary() -> None:
    pins = {generate_pin(4) for _ in range(200)}
    assert all(valid_pin_format(p) and not weak_pin(p) for p in pins)
    assert len(pins) > 150
    assert valid_pin_format(generate_pin(6), digits=6)


def test_guessing_a_generated_pin_takes_more_than_a_year_with_the_defaults() -> None:
    e = guessing_estimate(POLICY)
    assert e.pin_space == 7276 and e.guesses == 3638.5
    # The cellmate who resets the escalation with their own PIN is the fastest: 8 a day.
    assert e.fastest == e.with_own_pin
    assert e.with_own_pin.days == 3638 // 8
    assert e.without_own_pin > e.with_own_pin
    assert e.years > 1


def test_without_the_daily_cap_a_cellmate_guesses_in_days() -> None:
    """Why the daily cap: escalation alone is reset by any successful call."""
    e = guessing_estimate(LockoutPolicy(daily_failures=0))
    assert e.with_own_pin < timedelta(days=8)
    assert e.without_own_pin > timedelta(days=365)


def test_the_docs_show_the_figure_of_the_defaults() -> None:
    text = (REPO_ROOT / "docs" / "security-pins.md").read_text()
    e = guessing_estimate(POLICY)
    assert f"{e.with_own_pin.days} days" in text
    assert f"{e.years:.2f} years" in text
    assert f"{e.without_own_pin.days} days" in text


def test_bad_lockout_settings_stop_the_daemon_at_start() -> None:
    settings = Settings(site=SiteSettings(pin_lockout_growth=0.5))
    with pytest.raises(ConfigError, match=r"\[site\] PIN lockout: growth"):
        lockout_policy(settings)
    assert lockout_policy(Settings()) == LockoutPolicy()
