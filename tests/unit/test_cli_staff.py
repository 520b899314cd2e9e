"""`callcontrol staff ...`: accounts in the staff file, passwords never on the command line."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from callcontrol.adapters.web.staff_file import read_accounts
from callcontrol.cli import main
from callcontrol.domain.staff import verify_password

GOOD = "a long enough secret"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "callcontrol.toml"
    path.write_text(f'base_dir = "{tmp_path}"\n')
    return path


def run(config: Path, *args: str, stdin: str = "") -> int:
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        return main([*args, "--config", str(config)])
    finally:
        sys.stdin = saved


def test_add_list_disable_passwd(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staff = config.parent / "var" / "staff"
    args = ("staff", "add", "jsmith", "--role", "officer", "--name", "Jane  Smith")
    assert run(config, *args, "--password-stdin", stdin=GOOD + "\n") == 0
    assert GOOD not in staff.read_text() and staff.stat().st_mode & 0o777 == 0o600
    [account] = read_accounts(staff)
    assert (account.name, account.role, account.disabled) == ("Jane Smith", "officer", False)
    assert verify_password(GOOD, account.password)
    assert run(config, *args, "--password-stdin", stdin=GOOD + "\n") == 2
    assert "already has an account" in capsys.readouterr().err
    assert run(config, "staff", "disable", "jsmith") == 0
    assert run(config, "staff", "disable", "jsmith") == 2
    assert "already disabled" in capsys.readouterr().err
    capsys.readouterr()
    assert run(config, "staff", "list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["username"], listed["state"]) == ("jsmith", "disabled")
    assert "password" not in listed
    new = "another long secret"
    assert run(config, "staff", "passwd", "jsmith", "--password-stdin", stdin=new + "\n") == 0
    assert verify_password(new, read_accounts(staff)[0].password)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short", "too short"),
        ("jsmith-is-my-password", "contains the username"),
        ("aaaaaaaaaaaaaaaa", "too few characters"),
        ("password1234", "first ones guessed"),
    ],
)
def test_a_weak_password_is_refused_with_a_clear_error(
    config: Path, capsys: pytest.CaptureFixture[str], password: str, why: str
) -> None:
    args = ("staff", "add", "jsmith", "--role", "admin", "--name", "J", "--password-stdin")
    assert run(config, *args, stdin=password + "\n") == 2
    assert why in capsys.readouterr().err
    assert not (config.parent / "var" / "staff").exists() or not read_accounts(
        config.parent / "var" / "staff"
    )


def test_no_password_on_the_command_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("staff", "add", "jsmith", "--role", "admin", "--name", "J")
    assert run(config, *args, "--password", GOOD) == 2  # no such option
    assert run(config, *args) == 2  # no terminal to ask on, and no --password-stdin
    assert "--password-stdin" in capsys.readouterr().err


def test_bad_username_and_role(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "staff", "add", "Bad Name", "--role", "admin", "--name", "J",
               "--password-stdin", stdin=GOOD + "\n") == 2  # fmt: skip
    assert "invalid username" in capsys.readouterr().err
    assert run(config, "staff", "add", "ok", "--role", "root", "--name", "J") == 2
