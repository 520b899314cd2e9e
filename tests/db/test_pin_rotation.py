"""Rotating the PIN secret on real databases: `pin-secret rotate|status|retire`, and the real
decision service storing each PIN again with the new secret as it is keyed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.globals_store import SqlGlobals
from callcontrol.config import load_settings
from callcontrol.domain.model import Handset
from callcontrol.wiring import build_authoriser
from tests.db.conftest import Cli


@pytest.fixture
def site(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    """Two prisoners in one cell, their PINs hashed with a secret kept in a file."""
    monkeypatch.delenv("CALLCONTROL_SECURITY_PIN_SECRET")
    cli.ok("cell", "add", "A1-01", "--sip-password-stdin", stdin="a-long-sip-password-1\n")
    for number, pin in (("A1234BC", "1357"), ("B5678CD", "2468")):
        cli.ok("prisoner", "add", number, "--name", "X", "--cell", "A1-01", "--pin-stdin",
               stdin=pin + "\n")  # fmt: skip
    assert (tmp_path / "var" / "pin-secret").exists()
    return cli


async def _pin_check(pin: str) -> str | None:
    """The prison number the real decision service finds for this PIN on A1-01 (or None)."""
    settings = load_settings()
    engine = make_engine(settings.database.url)
    try:
        sessions = session_factory(engine)
        auth = build_authoriser(settings, SqlCallStore(sessions), SqlGlobals(sessions))
        check = await auth.check_pin(Handset("A1-01", "A1-01", True), pin, tries_left=3)
    finally:
        await engine.dispose()
    return check.prisoner.prison_number if check.prisoner else None


def pin_check(pin: str) -> str | None:
    return asyncio.run(_pin_check(pin))


def pins(cli: Cli) -> dict[str, int]:
    return cli.ok("pin-secret", "status", "--json").json()["pins"]


def test_rotate_keeps_every_pin_and_rehashes_as_they_are_keyed(site: Cli, tmp_path: Path) -> None:
    before = site.ok("pin-secret", "status", "--json").json()
    assert before["pins"] == {"current": 2, "previous": 0, "legacy": 0, "lost": 0}
    old_secret = (tmp_path / "var" / "pin-secret").read_text()
    rotated = site.ok("pin-secret", "rotate", "--json").json()
    assert rotated["retired_to_previous"] == before["current_key"] != rotated["current_key"]
    previous = tmp_path / "var" / "pin-secret.previous"
    assert previous.read_text() == old_secret and previous.stat().st_mode & 0o777 == 0o600
    assert pins(site) == {"current": 0, "previous": 2, "legacy": 0, "lost": 0}

    assert pin_check("1357") == "A1234BC"  # the old hash matches, and is replaced
    assert pins(site) == {"current": 1, "previous": 1, "legacy": 0, "lost": 0}
    assert pin_check("9999") is None

    refused = site("pin-secret", "retire")
    assert refused.status == 2 and "1 PIN(s)" in refused.err
    site.ok("prisoner", "set-pin", "B5678CD", "--pin-stdin", stdin="3579\n")
    assert pins(site) == {"current": 2, "previous": 0, "legacy": 0, "lost": 0}
    site.ok("pin-secret", "retire")
    assert not previous.exists()
    assert pin_check("1357") == "A1234BC"  # with the new secret alone
    assert pin_check("3579") == "B5678CD"


def test_forgetting_an_old_secret_by_force_loses_those_pins(site: Cli) -> None:
    site.ok("pin-secret", "rotate")
    site.ok("pin-secret", "retire", "--force")
    assert pins(site) == {"current": 0, "previous": 0, "legacy": 0, "lost": 2}
    assert pin_check("1357") is None


def test_rotation_needs_the_secret_in_a_file(cli: Cli) -> None:
    refused = cli("pin-secret", "rotate")  # the cli fixture gives it in the environment
    assert refused.status == 2 and "pin_secret_file" in refused.err
