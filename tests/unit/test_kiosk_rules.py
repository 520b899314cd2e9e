"""The kiosk's pure rules: what counts as a typed prison number, which new PINs may be chosen,
and its settings section."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcontrol.config import load_settings
from callcontrol.domain.kiosk import NewPinProblem, new_pin_problem, typed_prison_number


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        (" A1234BC ", "A1234BC"),
        ("a1234bc", "a1234bc"),  # looked up as typed: prison numbers are exact
        ("", ""),
        ("A1234 BC", ""),
        ("../A1", ""),
        ("A" * 33, ""),
        ("A١٢", ""),  # digits of another script
    ],
)
def test_typed_prison_number(typed: str, number: str) -> None:
    assert typed_prison_number(typed) == number


@pytest.mark.parametrize(
    ("old", "new", "again", "problem"),
    [
        ("1357", "2580", "2580", None),
        ("1357", "258", "258", NewPinProblem.FORMAT),
        ("1357", "２５８０", "２５８０", NewPinProblem.FORMAT),  # full-width digits
        ("1357", "2580", "2850", NewPinProblem.MISMATCH),
        ("1357", "1223", "1223", NewPinProblem.WEAK),
        ("1357", "6789", "6789", NewPinProblem.WEAK),
        ("1357", "1357", "1357", NewPinProblem.SAME),
    ],
)
def test_new_pin_rules(old: str, new: str, again: str, problem: NewPinProblem | None) -> None:
    assert new_pin_problem(old, new, again, 4) is problem


def test_every_problem_has_words_for_the_prisoner() -> None:
    for problem in NewPinProblem:
        assert problem.text(4) and "{" not in problem.text(4)
    assert "4 digits" in NewPinProblem.FORMAT.text(4)


def test_the_kiosk_is_off_unless_enabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLCONTROL_CONFIG", raising=False)
    assert load_settings(None).kiosk.enabled is False
    config = tmp_path / "c.toml"
    config.write_text("[kiosk]\nenabled = true\nport = 9001\nidle_timeout_s = 60\n")
    k = load_settings(config).kiosk
    assert (k.enabled, k.port, k.idle_timeout_s, k.host) == (True, 9001, 60, "127.0.0.1")
    monkeypatch.setenv("CALLCONTROL_KIOSK_PORT", "9002")
    assert load_settings(config).kiosk.port == 9002
