"""PINs off the command line, and staff's alerts and `cell unlock`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import getpass
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.globals_store import SqlGlobals
from callcontrol.adapters.db.tables import AuditEntry, HandsetPinState, PinLockout
from callcontrol.domain.model import Handset
from callcontrol.domain.pins import LockoutPolicy, pin_matches, valid_pin_format, weak_pin
from callcontrol.domain.rules import SitePolicy
from callcontrol.services.authorise import Authoriser
from tests.conftest import TEST_PIN_SECRET
from tests.db.conftest import Cli
from tests.services.test_authorise import BILLING


@pytest.fixture
def prison(cli: Cli) -> Cli:
    cli.ok("cell", "add", "A1-01", "--wing", "A")
    cli.ok("prisoner", "add", "A1", "--name", "Ann", "--pin-stdin", "--cell", "A1-01", stdin="1357")
    return cli


def _hash(cli: Cli, number: str) -> str:
    [(stored,)] = cli.query(select(m.Prisoner.pin_hash).where(m.Prisoner.prison_number == number))
    return str(stored)


def test_pin_from_stdin_is_stored_hashed(prison: Cli) -> None:
    assert pin_matches(TEST_PIN_SECRET.encode(), "A1", "1357", _hash(prison, "A1"))


def test_a_generated_pin_is_strong_printed_once_and_works(prison: Cli) -> None:
    data = prison.ok(
        "prisoner", "add", "B2", "--name", "Bo", "--generate-pin", "--cell", "A1-01", "--json"
    ).json()
    pin = data["pin"]
    assert valid_pin_format(pin) and not weak_pin(pin)
    assert pin_matches(TEST_PIN_SECRET.encode(), "B2", pin, _hash(prison, "B2"))
    out = prison.ok("prisoner", "set-pin", "B2", "--generate-pin").out
    new = out.split("PIN: ")[1].split()[0]
    assert pin_matches(TEST_PIN_SECRET.encode(), "B2", new, _hash(prison, "B2"))
    assert "shown this once" in out


def test_the_prompt_asks_twice_and_refuses_a_mismatch(
    prison: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["2468", "2468", "9753", "9751"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr("sys.stdin", Tty())
    from callcontrol.cli import main

    assert main(["prisoner", "set-pin", "A1"]) == 0
    assert prompts == ["PIN: ", "PIN again: "]
    assert pin_matches(TEST_PIN_SECRET.encode(), "A1", "2468", _hash(prison, "A1"))
    assert main(["prisoner", "set-pin", "A1"]) == 2  # 9753 then 9751
    assert pin_matches(TEST_PIN_SECRET.encode(), "A1", "2468", _hash(prison, "A1"))


def test_pin_on_argv_only_in_the_lab(prison: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = prison("prisoner", "set-pin", "A1", "--pin", "2468")
    assert refused.status == 2 and "--pin puts the PIN on the command line" in refused.err
    assert pin_matches(TEST_PIN_SECRET.encode(), "A1", "1357", _hash(prison, "A1"))
    monkeypatch.setenv("CALLCONTROL_LAB_ENABLED", "true")
    prison.ok("prisoner", "set-pin", "A1", "--pin", "2468")
    assert pin_matches(TEST_PIN_SECRET.encode(), "A1", "2468", _hash(prison, "A1"))


async def _guess(url: str, pins: list[str]) -> None:
    """Wrong PINs on A1-01's handset, through the Authoriser and the real store."""
    engine = make_engine(url)
    try:
        store = SqlCallStore(session_factory(engine))
        auth = Authoriser(
            store,
            SqlGlobals(store.sessions),
            policy=SitePolicy(),
            lockout=LockoutPolicy(),
            billing=BILLING,
            pin_secret=TEST_PIN_SECRET.encode,
            clock=lambda: datetime.now(UTC),
        )
        for pin in pins:
            await auth.check_pin(Handset("A1-01", "A1-01", True), pin, tries_left=3)
    finally:
        await engine.dispose()


def test_a_lockout_is_audited_alerted_and_unlocked_by_staff(prison: Cli) -> None:
    assert "no PIN lockouts" in prison.ok("alerts").out
    asyncio.run(_guess(prison.url, ["0000", "1111", "2222", "3333", "4444"]))
    # Locked: the right PIN is refused too, and nothing more is counted.
    [(until, level)] = prison.query(select(HandsetPinState.locked_until, HandsetPinState.level))
    assert level == 1 and until > datetime.now(UTC) + timedelta(minutes=14)
    [alert] = prison.ok("alerts", "--json").json()
    assert (alert["cell"], alert["status"], alert["level"], alert["failures"]) == (
        "A1-01",
        "in force",
        1,
        5,
    )
    out = prison.ok("alerts").out
    assert "A1-01" in out and "in force" in out and "1 handset(s) locked now" in out
    [entry] = prison.query(select(AuditEntry).where(AuditEntry.action == "pin_lockout"))
    assert (entry.actor, entry.role, entry.target) == ("callcontrol", "system", "cell:A1-01")
    assert "5 wrong PINs" in entry.detail

    refused = prison("cell", "unlock", "A1-01")
    assert refused.status == 2 and "--reason" in refused.err
    out = prison.ok("cell", "unlock", "A1-01", "--reason", "talked to both", "--by", "SO Jones").out
    assert out.startswith("cell A1-01 unlocked")
    [(until,)] = prison.query(select(HandsetPinState.locked_until))
    assert until is None
    [alert] = prison.ok("alerts", "--json").json()
    assert (alert["status"], alert["unlocked_by"], alert["unlock_reason"]) == (
        "unlocked",
        "SO Jones",
        "talked to both",
    )
    [entry] = prison.query(select(AuditEntry).where(AuditEntry.action == "unlock"))
    assert (entry.actor, entry.target, entry.reason) == ("SO Jones", "cell:A1-01", "talked to both")
    # The wrong PINs before the unlock count no more; the escalation stays (level 2 next).
    asyncio.run(_guess(prison.url, ["0000", "1111", "2222", "3333"]))
    assert len(prison.query(select(PinLockout.id))) == 1
    asyncio.run(_guess(prison.url, ["4444"]))
    levels = [lv for (lv,) in prison.query(select(PinLockout.level).order_by(PinLockout.id))]
    assert levels == [1, 2]
    assert "was not locked" not in prison.ok("cell", "unlock", "A1-01", "--reason", "r").out
    assert "was not locked" in prison.ok("cell", "unlock", "A1-01", "--reason", "r").out
    assert prison("cell", "unlock", "Z9", "--reason", "r").status == 2
