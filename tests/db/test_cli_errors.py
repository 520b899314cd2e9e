"""The CLI when the settings or the database are wrong: one line, the right exit status."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from callcontrol.adapters.db.engine import head_revision
from tests.conftest import TEST_PIN_SECRET, create_pg_database, drop_pg_database
from tests.db.conftest import Cli, Result, clean_environment


@pytest.fixture
def bare(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[[str], Cli]:
    """A Cli on a database URL given by the test, with no other settings."""
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)

    def make(url: str) -> Cli:
        monkeypatch.setenv("CALLCONTROL_DATABASE_URL", url)
        return Cli(url, capsys)

    return make


def _one_line_error(result: Result, status: int, *words: str) -> None:
    assert result.status == status, result
    assert result.out == ""
    assert result.err.startswith("callcontrol: error: ") and result.err.count("\n") == 1, result
    for word in words:
        assert word in result.err, result


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no schema at all."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/var/new.sqlite3"
    pg_url = request.getfixturevalue("pg_url")
    url = create_pg_database(pg_url, migrate=False)
    request.addfinalizer(lambda: drop_pg_database(pg_url, url))
    return url


def test_schema_not_current_then_upgrade(bare: Callable[[str], Cli], empty_url: str) -> None:
    cli = bare(empty_url)
    _one_line_error(cli("cell", "list"), 1, "run `callcontrol db upgrade`")
    _one_line_error(cli("cell", "add", "A1-01"), 1, "not at the latest schema")
    assert f"upgraded from empty to {head_revision()}" in cli.ok("db", "upgrade").out
    assert "already at the latest schema" in cli.ok("db", "upgrade").out
    assert cli.ok("db", "upgrade", "--json").json()["to"] == head_revision()
    assert cli.ok("cell", "list").out == "no cells\n"
    cli.ok("cell", "add", "A1-01")


def test_database_unreachable(bare: Callable[[str], Cli]) -> None:
    cli = bare("postgresql+asyncpg://postgres@127.0.0.1:1/callcontrol")
    _one_line_error(cli("cell", "list"), 1, "unreachable", "127.0.0.1:1")
    _one_line_error(cli("db", "upgrade"), 1, "unreachable")


def test_password_not_shown_in_errors(bare: Callable[[str], Cli]) -> None:
    cli = bare("postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:1/callcontrol")
    result = cli("cell", "list")
    _one_line_error(result, 1, "unreachable")
    assert "s3cret-pw" not in result.err


@pytest.mark.parametrize(
    "url", ["not a url", "mysql+aiomysql://u@h/db", "postgresql+psycopg9://h/db"]
)
def test_bad_database_url(bare: Callable[[str], Cli], url: str) -> None:
    _one_line_error(bare(url)("cell", "list"), 2, "[database] url")


def test_config_errors(
    bare: Callable[[str], Cli], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli = bare(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3")
    _one_line_error(
        cli("cell", "list", "--config", str(tmp_path / "none.toml")), 2, "does not exist"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nregion = 'GB'\n")
    _one_line_error(cli("cell", "list", "--config", str(bad)), 2, "not valid TOML")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[site]\ncolour = 'red'\n")
    _one_line_error(cli("--config", str(unknown), "cell", "list"), 2, "colour")
    monkeypatch.setenv("CALLCONTROL_SITE_MAX_SOCIAL_CONTACTS", "many")
    _one_line_error(cli("cell", "list"), 2, "CALLCONTROL_SITE_MAX_SOCIAL_CONTACTS")


def test_config_file_and_pin_secret_file(
    bare: Callable[[str], Cli], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Settings from --config (after the command); the PIN key file is made on first use."""
    cli = bare("unused")
    monkeypatch.delenv("CALLCONTROL_DATABASE_URL")
    config = tmp_path / "callcontrol.toml"
    config.write_text(
        f'base_dir = "{tmp_path}"\n[database]\nurl = "sqlite+aiosqlite:///var/cc.sqlite3"\n'
    )
    cli.ok("db", "upgrade", "--config", str(config))
    assert (tmp_path / "var" / "cc.sqlite3").exists()  # relative to base_dir
    cli.ok("cell", "add", "A1-01", "--config", str(config))
    cli.ok("prisoner", "add", "P1", "--name", "P", "--pin-stdin", "--cell", "A1-01",
           "--config", str(config), stdin="1234\n")  # fmt: skip
    secret = tmp_path / "var" / "pin-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 16
    # The environment overrides the file.
    monkeypatch.setenv("CALLCONTROL_SECURITY_PIN_SECRET", TEST_PIN_SECRET)
    cli.ok("prisoner", "add", "P2", "--name", "Q", "--pin-stdin", "--cell", "A1-01",
           "--config", str(config), stdin="4321\n")  # fmt: skip
    assert [p["prison_number"] for p in cli.ok(
        "prisoner", "list", "--json", "--config", str(config)).json()] == ["P1", "P2"]  # fmt: skip


def test_no_command(bare: Callable[[str], Cli]) -> None:
    _one_line_error(bare("unused")(), 2, "COMMAND")
