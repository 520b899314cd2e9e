"""[asterisk] reload_cells: "cli" has the daemon reload PJSIP itself (Asterisk's CLI); "none"
has it only rewrite the cells' file, for the shipped callcontrol-cells.path unit to reload."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from callcontrol import app
from callcontrol.adapters.asterisk import control
from callcontrol.config import ConfigError, Settings, load_settings


def with_reload(settings: Settings, how: str) -> Settings:
    asterisk = dataclasses.replace(settings.asterisk, reload_cells=how)
    return dataclasses.replace(settings, asterisk=asterisk)


@pytest.mark.parametrize(("how", "reloads"), [("cli", 1), ("none", 0)])
async def test_the_daemon_reloads_pjsip_only_when_told(
    lab_settings: Settings, monkeypatch: pytest.MonkeyPatch, how: str, reloads: int
) -> None:
    calls: list[Settings] = []
    monkeypatch.setattr(control, "reload_pjsip", calls.append)
    sync = app.build_cells_sync(with_reload(lab_settings, how), sessions=None)
    await sync.reload()
    assert len(calls) == reloads


def test_an_unknown_way_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "cc.toml"
    config.write_text('[asterisk]\nreload_cells = "sudo"\n')
    with pytest.raises(ConfigError, match="reload_cells must be 'cli' or 'none'"):
        load_settings(config, env={})
