"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcontrol.config import LabSettings, Settings


@pytest.fixture
def lab_settings(tmp_path: Path) -> Settings:
    """A lab whose 'root' is an empty folder with an Asterisk modules folder in it: enough for
    the lab to render its configuration, without Asterisk."""
    (tmp_path / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    return Settings(
        lab=LabSettings(root=str(tmp_path), name="unit", use_system_asterisk="no"),
        base_dir=tmp_path,
    )
