"""`callcontrol asterisk render --to DIR`: every placeholder filled from the settings, the
secrets made once and reused (never printed), the operator's other files left alone."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from callcontrol.adapters.asterisk import render as rendering
from callcontrol.cli import main


def config(tmp_path: Path, **extra: str) -> Path:
    lines = "\n".join(f"{k} = {v}" for k, v in extra.items())
    path = tmp_path / "cc.toml"
    path.write_text(f"""
base_dir = "{tmp_path}"
[asterisk]
journal_file = "/var/spool/asterisk/callcontrol/journal.log"
astmoddir = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
pjsip_host = "192.0.2.10"
{lines}
[recording]
spool_dir = "/var/spool/asterisk/callcontrol/recordings"
""")
    return path


def render(tmp_path: Path, to: Path, *more: str) -> int:
    return main(["asterisk", "render", "--to", str(to), "--no-cells", *more,
                 "--config", str(config(tmp_path))])  # fmt: skip


def test_every_placeholder_is_filled_from_the_settings(tmp_path: Path, capsys) -> None:
    out = tmp_path / "etc"
    assert render(tmp_path, out) == 0
    said = capsys.readouterr().out
    ami = (tmp_path / "var/ami-secret").read_text().strip()
    agi = (tmp_path / "var/agi-secret").read_text().strip()
    for name in ("extensions.conf", "pjsip.conf", "manager.conf", "dialplan/cells.conf"):
        assert "@@" not in (out / name).read_text().replace("@@placeholders@@", "")
    assert f"secret = {ami}" in (out / "manager.conf").read_text()
    # The daemon's account gets only the events it uses (tests/unit/test_ami_eventfilter.py).
    assert "\neventfilter = ^Event: (Newchannel|" in (out / "manager.conf").read_text()
    ext = (out / "extensions.conf").read_text()
    assert f"CC_AGI_URL = agi://127.0.0.1:4573/{agi}\n" in ext
    assert "CC_JOURNAL = /var/spool/asterisk/callcontrol/journal.log" in ext
    assert "bind = 192.0.2.10:5060" in (out / "pjsip.conf").read_text()
    assert "strictrtp = yes" in (out / "rtp.conf").read_text()
    assert "astetcdir => /etc/asterisk" in (out / "asterisk.conf").read_text()
    assert (out / "sounds/cc-refused.gsm").stat().st_size > 0
    assert not (out / "dialplan/bench.conf").exists(), "the lab's dialplan is not the product's"
    assert stat.S_IMODE((out / "manager.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "extensions.conf").stat().st_mode) == 0o640
    assert ami not in said and agi not in said, "a secret was printed"


def test_a_second_render_reuses_the_secrets_and_leaves_other_files(tmp_path: Path) -> None:
    out = tmp_path / "etc"
    assert render(tmp_path, out) == 0
    manager = (out / "manager.conf").read_text()
    (out / "voicemail.conf").write_text("; the operator's\n")
    assert render(tmp_path, out) == 2, "a non-empty folder needs --force"
    assert render(tmp_path, out, "--force") == 0
    assert (out / "manager.conf").read_text() == manager
    assert (out / "voicemail.conf").read_text() == "; the operator's\n"


def test_an_unknown_placeholder_is_named(tmp_path: Path) -> None:
    with pytest.raises(rendering.RenderError, match="x.conf: unknown placeholder.s. NOPE"):
        rendering.fill("a = @@AMI_PORT@@ @@NOPE@@", {"AMI_PORT": "5038"}, "x.conf")


def test_the_journal_is_a_required_setting(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bare.toml"
    path.write_text(f'base_dir = "{tmp_path}"\n')
    code = main(["asterisk", "render", "--to", str(tmp_path / "o"), "--no-cells",
                 "--config", str(path)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "[asterisk] journal_file is not set" in err and "\n" not in err


def test_a_value_that_would_start_another_setting_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace('pjsip_host = "192.0.2.10"', 'pjsip_host = "a;b"'))
    assert main(["asterisk", "render", "--to", str(tmp_path / "o"), "--no-cells",
                 "--config", str(cfg)]) == 1  # fmt: skip
