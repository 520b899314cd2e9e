"""The FastAGI shared secret: made by the lab, rendered into CC_AGI_URL, read by the daemon,
refused when missing, too open or malformed; and the [agi] settings that go with it."""

from __future__ import annotations

import grp
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from callcontrol.adapters.agi.secret import (
    SECRET_FORMAT,
    AgiSecretError,
    generate_secret,
    read_secret_file,
)
from callcontrol.app import agi_secret
from callcontrol.config import (
    AgiSettings,
    ConfigError,
    Settings,
    load_settings,
    with_overrides,
)
from callcontrol_lab.lab import Lab

BIN = Path(sys.executable).parent


@pytest.fixture
def settings(lab_settings: Settings) -> Settings:
    return lab_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_lab_makes_the_secret_and_renders_it_into_cc_agi_url(settings: Settings) -> None:
    lab = Lab(settings)
    secret_file = settings.base_dir / "var/agi-secret"
    assert not secret_file.exists()
    lab.render()
    secret = secret_file.read_text().strip()
    assert SECRET_FORMAT.fullmatch(secret) and len(secret) == 64
    assert mode(secret_file) == 0o640
    conf = lab.inside(lab.conf_dir)
    ext = conf / "extensions.conf"
    [url] = re.findall(r"^CC_AGI_URL = (.*)$", ext.read_text(), re.M)
    assert url == f"agi://127.0.0.1:4573/{secret}"
    # The rendered files and Asterisk's log folder: owner and group only.
    assert mode(ext) == 0o640 and mode(conf / "dialplan" / "cells.conf") == 0o640
    assert mode(conf) == 0o750 and mode(lab.inside(lab.log_dir)) == 0o750
    # Rendering again, or another Lab on the same settings, keeps the same secret.
    Lab(settings).render()
    assert secret_file.read_text().strip() == secret
    assert f"/{secret}" in ext.read_text()
    # ... and the daemon, with the same settings, reads that one.
    assert agi_secret(settings) == secret


def test_a_rendered_file_made_world_readable_before_is_made_private(settings: Settings) -> None:
    lab = Lab(settings)
    lab.render()
    ext = lab.inside(lab.conf_dir) / "extensions.conf"
    ext.chmod(0o644)
    lab.render()
    assert mode(ext) == 0o640


def test_the_secret_file_gets_the_configured_group(settings: Settings) -> None:
    group = grp.getgrgid(os.getgid() + 1 if os.getgid() == 0 else 0)  # one that is not ours
    Lab(with_overrides(settings, agi={"secret_group": group.gr_name})).render()
    assert (settings.base_dir / "var/agi-secret").stat().st_gid == group.gr_gid
    with pytest.raises(Exception, match="no-such-group-here"):
        Lab(
            with_overrides(
                settings, agi={"secret_group": "no-such-group-here", "secret_file": "var/x"}
            )
        ).render()


def test_outside_the_lab_the_daemon_refuses_a_missing_secret_file(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="FastAGI secret file .*agi-secret is missing"):
        agi_secret(settings)
    assert not (settings.base_dir / "var/agi-secret").exists()  # and did not make one
    lab_daemon = with_overrides(settings, lab={"enabled": True})
    assert SECRET_FORMAT.fullmatch(agi_secret(lab_daemon))  # the lab's daemon may make it


@pytest.mark.parametrize(
    ("content", "file_mode", "why"),
    [
        ("a" * 64, 0o644, "mode 0644"),
        ("a" * 64, 0o604, "mode 0604"),
        ("a" * 64, 0o660, "mode 0660"),
        ("short", 0o640, "malformed"),
        ("-" + "a" * 63, 0o640, "malformed"),
        ("a" * 30 + " " + "a" * 30, 0o640, "malformed"),
        ("", 0o640, "malformed"),
    ],
)
def test_a_secret_file_that_cannot_serve_is_refused_without_showing_it(
    tmp_path: Path, content: str, file_mode: int, why: str
) -> None:
    path = tmp_path / "agi-secret"
    path.write_text(content + "\n")
    path.chmod(file_mode)
    with pytest.raises(AgiSecretError, match=why) as refused:
        read_secret_file(path)
    assert content not in str(refused.value) or content == ""
    assert "\n" not in str(refused.value)  # one line


def test_an_unreadable_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "agi-secret").mkdir()
    with pytest.raises(AgiSecretError, match="not a regular file|cannot be read"):
        read_secret_file(tmp_path / "agi-secret")


def test_generated_secrets_never_begin_with_a_dash_and_fit_a_url() -> None:
    made = {generate_secret() for _ in range(2000)}
    assert len(made) == 2000
    assert all(SECRET_FORMAT.fullmatch(s) and re.fullmatch(r"[0-9a-f]{64}", s) for s in made)


def test_callcontrol_run_refuses_to_start_without_the_secret(tmp_path: Path) -> None:
    config = tmp_path / "callcontrol.toml"
    config.write_text(f"""
base_dir = "{tmp_path}"
[security]
pin_secret = "{"p" * 32}"
[agi]
port = 1
""")
    proc = subprocess.run(
        [str(BIN / "callcontrol"), "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "FastAGI secret file" in lines[0] and "agi-secret is missing" in lines[0]


def test_agi_settings_defaults_and_overrides() -> None:
    agi = load_settings(env={}).agi
    assert agi == AgiSettings()
    assert agi.allowed_peers == ("127.0.0.1", "::1")
    assert (agi.secret_file, agi.secret_group) == ("var/agi-secret", "")
    assert agi.handshake_timeout_s == 2.0
    assert (agi.max_sessions, agi.max_sessions_per_peer, agi.max_handshakes) == (500, 64, 256)
    env = {
        "CALLCONTROL_AGI_ALLOWED_PEERS": "10.1.2.0/24, 127.0.0.1",
        "CALLCONTROL_AGI_MAX_SESSIONS_PER_PEER": "8",
    }
    agi = load_settings(env=env).agi
    assert agi.allowed_peers == ("10.1.2.0/24", "127.0.0.1")
    assert agi.max_sessions_per_peer == 8


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"CALLCONTROL_AGI_ALLOWED_PEERS": "localhost"}, "'localhost' is not an IP"),
        ({"CALLCONTROL_AGI_MAX_SESSIONS_PER_PEER": "0"}, "max_sessions_per_peer"),
        ({"CALLCONTROL_AGI_HANDSHAKE_TIMEOUT_S": "0"}, "handshake_timeout_s"),
        ({"CALLCONTROL_AGI_HANDSHAKE_TIMEOUT_S": "30"}, "handshake_timeout_s"),
    ],
)
def test_bad_agi_settings_are_refused(env: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        load_settings(env=env)


def test_callcontrol_agi_secret_makes_the_file_and_the_globals_line(tmp_path: Path) -> None:
    config = tmp_path / "callcontrol.toml"
    config.write_text(f'base_dir = "{tmp_path}"\n[agi]\nhost = "127.0.0.1"\nport = 4599\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "callcontrol"), "agi", "secret", *args, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    missing = cli()
    assert missing.returncode == 1 and "is missing" in missing.stderr
    globals_file = tmp_path / "cc_agi.conf"
    made = cli("--create", "--globals", str(globals_file))
    assert made.returncode == 0, made.stderr
    secret = (tmp_path / "var/agi-secret").read_text().strip()
    assert secret not in made.stdout + made.stderr  # never printed
    assert mode(tmp_path / "var/agi-secret") == mode(globals_file) == 0o640
    [line] = [x for x in globals_file.read_text().splitlines() if not x.startswith(";")]
    assert line == f"CC_AGI_URL = agi://127.0.0.1:4599/{secret}"
    again = cli("--create")  # kept, not replaced
    assert again.returncode == 0 and "created" not in again.stdout
    assert (tmp_path / "var/agi-secret").read_text().strip() == secret
