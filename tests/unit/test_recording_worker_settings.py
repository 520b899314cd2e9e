"""[recording] worker: "spawn" (the default: the daemon runs the recording worker) or
"external"; anything else is refused with a message that says what is meant. The command the
daemon runs reads the daemon's own settings file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from callcontrol.config import ConfigError, load_settings
from callcontrol.recording_worker_process import worker_command


def test_the_worker_setting(tmp_path: Path) -> None:
    assert load_settings(env={}).recording.worker == "spawn"
    env = {"CALLCONTROL_RECORDING_WORKER": "external"}
    assert load_settings(env=env).recording.worker == "external"
    config = tmp_path / "cc.toml"
    config.write_text('[recording]\nworker = "thread"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(config, env={})
    assert str(e.value) == (
        "[recording] worker must be 'spawn' (the daemon runs the recording worker) or "
        "'external' (the site runs `callcontrol recordings worker`), not 'thread'"
    )


def test_the_spawned_worker_reads_the_daemons_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "cc.toml"
    config.write_text("[recording]\nbitrate = 16000\n")
    argv = worker_command(load_settings(config, env={}))
    assert argv[:5] == [sys.executable, "-m", "callcontrol", "recordings", "worker"]
    assert argv[-2:] == ["--config", str(config.resolve())]
    assert "--config" not in worker_command(load_settings(env={}))
