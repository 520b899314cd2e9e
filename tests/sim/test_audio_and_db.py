"""The test audio files, and the optional lookups in the callcontrol database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callcontrol.config import load_settings
from callcontrol_lab import handsets
from callcontrol_lab.simulator import audio
from callcontrol_lab.simulator.records import call_decision, cell_password
from callcontrol_lab.simulator.sipp import SIM_DIR


def test_mu_law_reference_values() -> None:
    assert audio.linear_to_ulaw(0) == 0xFF
    assert audio.linear_to_ulaw(32767) == 0x80
    assert audio.linear_to_ulaw(-32768) == 0x00
    assert audio.linear_to_ulaw(1000) == 206 and audio.linear_to_ulaw(-1000) == 78


@pytest.mark.parametrize("name", sorted(audio.TONES))
def test_committed_audio_is_what_the_generator_makes(name: str) -> None:
    data = (SIM_DIR / "audio" / name).read_bytes()
    frequency, seconds = audio.TONES[name]
    assert data == audio.tone(frequency, seconds)
    assert len(data) % audio.PACKET_BYTES == 0  # whole 20 ms packets: seamless loops
    assert 0 < len(data) < 100_000


def test_the_two_parties_sound_different() -> None:
    files = [(SIM_DIR / "audio" / n).read_bytes() for n in audio.TONES]
    assert files[0] != files[1]


@pytest.fixture
def db_settings(tmp_path: Path):
    db = tmp_path / "cc.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE cells (id INTEGER PRIMARY KEY, name TEXT, sip_password TEXT);
            CREATE TABLE call_decisions (id INTEGER PRIMARY KEY, sip_call_id TEXT,
                                         outcome TEXT, reason TEXT);
            INSERT INTO cells (name, sip_password) VALUES ('A1-01', 'secret-1');
            INSERT INTO call_decisions (sip_call_id, outcome, reason)
                VALUES ('cid-1', 'refuse', 'wrong_pin'), ('cid-1', 'refuse', 'pin_locked'),
                       ('cid-2', 'allow', 'ok');
            """
        )
    return load_settings(
        env={
            "CALLCONTROL_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "CALLCONTROL_BASE_DIR": str(tmp_path),
        }
    )


async def test_password_from_the_labs_handsets_file_not_the_database(db_settings) -> None:
    """The database has only digest hashes; the lab keeps the passwords it made."""
    assert await cell_password(db_settings, "A1-01") is None  # not the row's column
    handsets.remember(handsets.path_of(db_settings), {"A1-01": "lab-secret-1"})
    assert await cell_password(db_settings, "A1-01") == "lab-secret-1"
    assert await cell_password(db_settings, "Z9-99") is None


async def test_latest_decision_of_the_call(db_settings) -> None:
    assert await call_decision(db_settings, "cid-1", wait_s=0) == ("refuse", "pin_locked")
    assert await call_decision(db_settings, "cid-2", wait_s=0) == ("allow", "ok")
    assert await call_decision(db_settings, "cid-3", wait_s=0.3) == (None, None)


async def test_no_database_means_no_answers(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    settings = load_settings(
        env={
            "CALLCONTROL_DATABASE_URL": f"sqlite:///{missing}",
            "CALLCONTROL_BASE_DIR": str(tmp_path),
        }
    )
    assert await cell_password(settings, "A1-01") is None
    assert await call_decision(settings, "cid-1", wait_s=5) == (None, None)  # at once
    assert not missing.exists()


async def test_a_database_without_the_tables(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite3"
    sqlite3.connect(db).close()
    settings = load_settings(
        env={
            "CALLCONTROL_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "CALLCONTROL_BASE_DIR": str(tmp_path),
        }
    )
    assert await cell_password(settings, "A1-01") is None
    assert await call_decision(settings, "cid", wait_s=0) == (None, None)
