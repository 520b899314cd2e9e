"""The daemon refuses to start, with one line, when it could not do its work (startup_checks)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callcontrol.adapters.db.engine import make_engine
from callcontrol.config import AsteriskSettings, LabSettings, RecordingSettings, Settings
from callcontrol.startup_checks import StartupRefused, check_paths, check_schema


def production(tmp_path: Path, **asterisk: object) -> Settings:
    """Settings outside the lab with every shared path in place."""
    (tmp_path / "asterisk").mkdir(parents=True)
    (tmp_path / "spool").mkdir()
    values = {
        "journal_file": str(tmp_path / "asterisk" / "journal.log"),
        "cells_conf": str(tmp_path / "asterisk" / "pjsip_cells.conf"),
    } | asterisk
    return Settings(
        asterisk=AsteriskSettings(**values),  # type: ignore[arg-type]
        recording=RecordingSettings(spool_dir=str(tmp_path / "spool"), store_dir="store"),
        base_dir=tmp_path,
    )


def check(s: Settings) -> None:
    check_paths(s, s.path(s.asterisk.journal_file), s.path(s.recording.spool_dir))


def refusal(s: Settings) -> str:
    with pytest.raises(StartupRefused) as e:
        check(s)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_all_in_place_starts_and_a_journal_not_written_yet_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = production(tmp_path)
    with caplog.at_level(logging.WARNING):
        check(s)
    assert [r.getMessage() for r in caplog.records] == [
        f"call journal {tmp_path}/asterisk/journal.log does not exist yet: Asterisk writes it "
        "at its first call; it is read as soon as it appears"
    ]
    assert (tmp_path / "store").is_dir()  # the store is made when missing
    (tmp_path / "asterisk" / "journal.log").write_text("")
    caplog.clear()
    check(s)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("journal_file", "[asterisk] journal_file is not set"),
        ("spool_dir", "[recording] spool_dir is not set"),
    ],
)
def test_outside_the_lab_the_shared_paths_are_required(
    tmp_path: Path, setting: str, says: str
) -> None:
    if setting == "spool_dir":
        s = production(tmp_path)
        s = Settings(asterisk=s.asterisk, recording=RecordingSettings(), base_dir=tmp_path)
    else:
        s = production(tmp_path, **{setting: ""})
    assert refusal(s).startswith(says)


def test_the_cells_file_s_folder_must_be_writable_only_while_the_daemon_syncs(
    tmp_path: Path,
) -> None:
    gone = str(tmp_path / "gone" / "pjsip_cells.conf")
    check(production(tmp_path, cells_conf=gone, sync_cells=False))
    s = production(tmp_path / "again", cells_conf=gone)
    assert refusal(s) == (
        f"the folder of the cells' PJSIP file ([asterisk] cells_conf) {tmp_path}/gone "
        "does not exist"
    )


def test_a_journal_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    s = production(tmp_path, journal_file=str(tmp_path / "gone" / "journal.log"))
    assert refusal(s) == (
        f"the call journal's folder ([asterisk] journal_file) {tmp_path}/gone does not exist"
    )


def test_a_journal_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    s = production(tmp_path)
    (tmp_path / "asterisk" / "journal.log").mkdir()
    assert "is a folder" in refusal(s)


def test_a_spool_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    s = production(tmp_path)
    spool = tmp_path / "spool"
    spool.rmdir()
    spool.write_text("not a folder")
    assert refusal(s) == f"the recordings spool ([recording] spool_dir) {spool} is not a folder"
    spool.unlink()
    assert refusal(s) == f"the recordings spool ([recording] spool_dir) {spool} does not exist"


def test_a_store_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    s = production(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    s = Settings(
        asterisk=s.asterisk,
        recording=RecordingSettings(spool_dir=s.recording.spool_dir, store_dir="blocker/store"),
        base_dir=tmp_path,
    )
    assert refusal(s).startswith(
        f"the recording store ([recording] store_dir) {tmp_path}/blocker/store cannot be written"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs to become another user")
def test_permissions_are_tried_as_the_daemon_s_user(tmp_path: Path) -> None:
    """As root every mode lets through: try as nobody, in a child process."""
    tmp_path.chmod(0o755)
    s = production(tmp_path)
    for d in ("asterisk", "spool"):
        (tmp_path / d).chmod(0o700)  # root's only
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from callcontrol.startup_checks import StartupRefused, readable_dir\n"
        "try:\n    readable_dir(Path(sys.argv[1]), 'the recordings spool')\n"
        "except StartupRefused as e:\n    print(e)\n"
    )
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-c", code, s.recording.spool_dir],
        capture_output=True, text=True, timeout=30, cwd="/",
    )  # fmt: skip
    assert out.stdout.strip() == (
        f"the recordings spool {tmp_path}/spool cannot be read: Permission denied"
    ), out.stderr


def test_in_the_lab_the_lab_makes_the_folders(tmp_path: Path) -> None:
    s = Settings(lab=LabSettings(enabled=True), base_dir=tmp_path)
    check_paths(s, tmp_path / "nowhere" / "journal.log", tmp_path / "nowhere")


def test_a_schema_that_is_not_current_is_refused(tmp_path: Path) -> None:
    async def run() -> str:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
        try:
            with pytest.raises(StartupRefused) as e:
                await check_schema(engine)
            return str(e.value)
        finally:
            await engine.dispose()

    assert asyncio.run(run()).startswith(
        "database is not at the latest schema: run `callcontrol db upgrade`"
    )


def test_callcontrol_run_refuses_in_seconds_with_one_line(tmp_path: Path) -> None:
    """The daemon as an operator starts it, outside the lab, without [asterisk] journal_file."""
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    (var / "agi-secret").write_text("b" * 64 + "\n")
    (var / "agi-secret").chmod(0o640)
    (var / "ami-secret").write_text("c" * 40 + "\n")
    (var / "ami-secret").chmod(0o600)
    config = tmp_path / "callcontrol.toml"
    config.write_text(f"""
base_dir = "{tmp_path}"
[database]
url = "sqlite+aiosqlite:///{tmp_path}/none.sqlite3"
[security]
pin_secret = "unit-test-pin-secret-0123456789"
[recording]
spool_dir = "{tmp_path}"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}
    start = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "callcontrol"), "run", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith("callcontrol: error: [asterisk] journal_file is not set: "), line
    assert time.monotonic() - start < 30
    assert not (tmp_path / "none.sqlite3").exists()  # refused before touching the database
