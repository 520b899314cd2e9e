"""The product stands alone: nothing in callcontrol/ imports the lab, and the lab's settings file
keeps the given settings with the lab's own values over them."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import callcontrol
from callcontrol.config import load_settings
from callcontrol_lab import settings_file

PRODUCT = Path(callcontrol.__file__).parent


def test_the_product_imports_nothing_of_the_lab() -> None:
    found = []
    for source in PRODUCT.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{source}: {n}" for n in names if n.split(".")[0] == "callcontrol_lab"]
    assert found == []


def test_the_lab_settings_file_keeps_the_given_settings(tmp_path: Path) -> None:
    given = tmp_path / "given.toml"
    given.write_text(
        '[billing]\nwindows = ["08:00-12:00"]\n[billing.wing_windows]\nA = ["09:00-10:00"]\n'
        '[agi]\nsession_timeout_s = 20.5\n[asterisk]\njournal_file = "/elsewhere"\n'
        'pjsip_port = 5160\n[security]\npin_secret = "a \\"quoted\\" secret"\n'
    )
    lab = {"asterisk": {"journal_file": "/lab/journal", "cli_command": ["chroot", "/r", "x"]},
           "lab": {"enabled": True}}  # fmt: skip
    out = tmp_path / "lab.toml"
    settings_file.write(out, settings_file.merged(given, lab, tmp_path))
    assert out.stat().st_mode & 0o077 == 0
    data = tomllib.loads(out.read_text())
    assert data["base_dir"] == str(tmp_path)
    assert data["asterisk"] == {
        "journal_file": "/lab/journal", "pjsip_port": 5160, "cli_command": ["chroot", "/r", "x"]
    }  # fmt: skip
    s = load_settings(out, env={})
    assert s.billing.wing_windows == (("A", ("09:00-10:00",)),)
    assert s.agi.session_timeout_s == 20.5 and s.lab.enabled is True
    assert s.security.pin_secret == 'a "quoted" secret'
    assert s.asterisk.cli_command == ("chroot", "/r", "x")
