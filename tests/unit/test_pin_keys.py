"""Rotating the PIN secret: hashes name their key, previous keys still check, a PIN checked
with an old key is stored again with the new one (domain/pins.py, services/authorise.py)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from callcontrol.config import ConfigError, SecuritySettings, Settings
from callcontrol.domain.pins import (
    PinKeys,
    hash_pin,
    key_id,
    key_of,
    key_usage,
    needs_rehash,
    pin_matches,
)

OLD, NEW, OLDER = b"old-secret-0123456789", b"new-secret-0123456789", b"older-secret-012345"


def legacy(secret: bytes, prison_number: str, pin: str) -> str:
    """A hash as version 1 stored it, before key ids."""
    message = f"{prison_number}:{pin}".encode()
    return "h1$" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def test_key_id_names_a_secret_without_revealing_it() -> None:
    assert key_id(OLD) == key_id(OLD) != key_id(NEW)
    assert len(key_id(OLD)) == 8 and key_id(OLD) not in OLD.hex()
    assert key_of(hash_pin(OLD, "A1", "1357")) == key_id(OLD)
    assert key_of(legacy(OLD, "A1", "1357")) == "h1"
    assert key_of("plain") is None and key_of("h2$short$x") is None


def test_a_previous_key_still_checks_and_asks_for_a_rehash() -> None:
    stored = hash_pin(OLD, "A1", "1357")
    assert not pin_matches(NEW, "A1", "1357", stored)  # without the old key: lost
    keys = PinKeys(NEW, (OLD,))
    assert pin_matches(keys, "A1", "1357", stored)
    assert not pin_matches(keys, "A1", "2468", stored)
    assert needs_rehash(keys, stored)
    again = hash_pin(keys.current, "A1", "1357")
    assert pin_matches(keys, "A1", "1357", again) and not needs_rehash(keys, again)
    assert pin_matches(NEW, "A1", "1357", again)  # the old key is no longer needed for it


def test_a_hash_of_a_key_it_does_not_name_never_matches() -> None:
    """A hash naming the new key but made with the old one (forged, or corrupted) is not
    checked against the old key."""
    forged = "h2$" + key_id(NEW) + "$" + hash_pin(OLD, "A1", "1357").rsplit("$", 1)[1]
    assert not pin_matches(PinKeys(NEW, (OLD,)), "A1", "1357", forged)


def test_legacy_hashes_check_against_every_key() -> None:
    for secret in (OLD, NEW, OLDER):
        stored = legacy(secret, "A1", "1357")
        keys = PinKeys(NEW, (OLD, OLDER))
        assert pin_matches(keys, "A1", "1357", stored)
        assert not pin_matches(keys, "A1", "1358", stored)
        assert needs_rehash(keys, stored)
    assert not pin_matches(PinKeys(NEW), "A1", "1357", legacy(OLD, "A1", "1357"))


def test_key_usage_counts_what_still_needs_an_old_key() -> None:
    keys = PinKeys(NEW, (OLD,))
    hashes = [
        hash_pin(NEW, "A", "1357"), hash_pin(NEW, "B", "1357"), hash_pin(OLD, "C", "1357"),
        legacy(OLD, "D", "1357"), hash_pin(OLDER, "E", "1357"),
    ]  # fmt: skip
    assert key_usage(keys, hashes) == {"current": 2, "previous": 1, "legacy": 1, "lost": 1}


def test_settings_read_the_previous_secrets_file(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "pin-secret").write_text(NEW.decode() + "\n")
    settings = Settings(base_dir=tmp_path)
    assert settings.pin_keys() == PinKeys(NEW)
    previous = tmp_path / "var" / "pin-secret.previous"
    previous.write_text(f"{OLD.decode()}\n\n{OLDER.decode()}\n")
    previous.chmod(0o644)
    assert settings.pin_keys() == PinKeys(NEW, (OLD, OLDER))
    assert previous.stat().st_mode & 0o777 == 0o600  # tightened
    previous.write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        settings.pin_keys()
    direct = Settings(security=SecuritySettings(pin_secret=OLD.decode()), base_dir=tmp_path / "x")
    assert direct.pin_keys() == PinKeys(OLD)
