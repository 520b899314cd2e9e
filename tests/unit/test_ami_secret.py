"""The daemon's AMI secret: never a built-in one outside the lab, random where the lab renders it.

Settings.ami_secret (config.py) is what the daemon logs in with; Lab.render writes the same
secret into manager.conf. The daemon (`callcontrol run`) refuses to start without a proper one.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from callcontrol.adapters.agi.secret import create_secret_file
from callcontrol.config import (
    BUILTIN_AMI_SECRET,
    AmiSettings,
    ConfigError,
    Settings,
    with_overrides,
)
from callcontrol_lab.lab import OBSERVER_USER, Lab

BIN = Path(sys.executable).parent


@pytest.fixture
def settings(lab_settings: Settings) -> Settings:
    return lab_settings


def test_no_secret_and_no_file_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"AMI secret file .*ami-secret is missing"):
        settings.ami_secret()


@pytest.mark.parametrize("where", ["secret", "secret_file"])
def test_the_built_in_secret_is_refused_outside_the_lab_only(
    settings: Settings, where: str
) -> None:
    if where == "secret":
        s = with_overrides(settings, ami={"secret": BUILTIN_AMI_SECRET})
    else:
        (settings.base_dir / "var").mkdir()
        path = settings.base_dir / "var/ami-secret"
        path.write_text(BUILTIN_AMI_SECRET + "\n")
        path.chmod(0o600)
        s = settings
    with pytest.raises(ConfigError, match="built-in lab secret"):
        s.ami_secret()
    assert with_overrides(s, lab={"enabled": True}).ami_secret() == BUILTIN_AMI_SECRET


def test_an_empty_or_unsafe_or_world_readable_secret_is_refused(settings: Settings) -> None:
    path = settings.base_dir / "var/ami-secret"
    path.parent.mkdir()
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="is empty"):
        settings.ami_secret()
    path.write_text("a-long-enough-secret;read = all\n")
    with pytest.raises(ConfigError, match="spaces, ';'"):
        settings.ami_secret()
    path.write_text("0123456789abcdef0123456789abcdef\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        settings.ami_secret()


def test_created_secrets_are_random_and_kept_mode_0600(tmp_path: Path) -> None:
    secrets = []
    for name in ("a", "b"):
        s = Settings(ami=AmiSettings(secret_file=f"{name}/ami-secret"), base_dir=tmp_path)
        first = s.ami_secret(create=True)
        assert s.ami_secret() == first  # kept, not made again
        assert stat.S_IMODE((tmp_path / name / "ami-secret").stat().st_mode) == 0o600
        assert re.fullmatch(r"[0-9a-f]{48}", first)
        secrets.append(first)
    assert secrets[0] != secrets[1] and BUILTIN_AMI_SECRET not in secrets


def test_the_lab_renders_a_random_secret_and_a_least_privilege_account(settings: Settings) -> None:
    lab = Lab(settings)
    lab.render()
    secret = settings.ami_secret()  # the file the daemon reads, made by the render
    assert secret != BUILTIN_AMI_SECRET
    manager = lab.inside(lab.conf_dir) / "manager.conf"
    assert stat.S_IMODE(manager.stat().st_mode) == 0o600
    text = manager.read_text()
    assert f"secret = {secret}\n" in text and BUILTIN_AMI_SECRET not in text
    # The daemon's section (the lab adds its own watcher's after it: lab.OBSERVER_USER).
    daemon = text.split(f"[{settings.ami.username}]\n", 1)[1].split("\n[", 1)[0]
    settings_lines = {
        k.strip(): v.strip()
        for k, _, v in (x.partition("=") for x in daemon.splitlines() if not x.startswith(";"))
        if v
    }
    assert settings_lines["write"] == "call,reporting,originate"
    assert settings_lines["read"] == "call,reporting"
    assert settings_lines["permit"] == "127.0.0.1/255.255.255.255"
    assert settings_lines["deny"] == "0.0.0.0/0.0.0.0"
    assert settings_lines["eventfilter"].startswith("^Event: (Newchannel|")
    watcher = text.split(f"[{OBSERVER_USER}]\n", 1)[1]
    assert "read = call,reporting\n" in watcher and "write" not in watcher
    assert f"secret = {lab.observer_secret}\n" in watcher and lab.observer_secret != secret
    lab.render()  # rendered again: the same secret, not a new one
    assert f"secret = {secret}\n" in manager.read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, ami: str, lab: str = "") -> Path:
    config = tmp_path / "cc.toml"
    config.write_text(f"""
base_dir = "{tmp_path}"
[database]
url = "sqlite+aiosqlite:///{tmp_path}/cc.sqlite3"
[security]
pin_secret = "unit-pin-secret-0123456789abcdef"
[agi]
port = {_free_port()}
[http]
port = {_free_port()}
[ami]
{ami}
{lab}
""")
    return config


@pytest.mark.parametrize(
    ("ami", "why"),
    [
        (f'secret = "{BUILTIN_AMI_SECRET}"', "built-in lab secret"),
        ("", "ami-secret is missing"),
    ],
)
def test_the_daemon_refuses_to_start_without_a_proper_secret(
    tmp_path: Path, ami: str, why: str
) -> None:
    config = _config(tmp_path, ami)
    # The other keys the daemon checks first are there: only the AMI secret is wrong.
    create_secret_file(tmp_path / "var/agi-secret", "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}
    cli = [str(BIN / "callcontrol")]
    subprocess.run(cli + ["db", "upgrade", "--config", str(config)], check=True, env=env,
                   capture_output=True, timeout=60)  # fmt: skip
    proc = subprocess.run(
        cli + ["run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert proc.returncode == 1
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("callcontrol: error:")]
    assert why in line and "ami" in line.lower(), proc.stderr


def test_ami_secret_makes_a_random_secret_and_a_least_privilege_manager_conf(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, "port = 5999")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}
    cli = [str(BIN / "callcontrol"), "ami", "secret", "--config", str(config)]
    missing = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1 and "ami-secret is missing" in missing.stderr
    manager = tmp_path / "manager.conf"
    made = subprocess.run(cli + ["--create", "--manager", str(manager), "--json"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = (tmp_path / "var/ami-secret").read_text().strip()
    assert secret not in made.stdout + made.stderr  # never printed
    text = manager.read_text()
    assert stat.S_IMODE(manager.stat().st_mode) == 0o600
    assert f"secret = {secret}\n" in text and "port = 5999\n" in text
    assert "write = call,reporting,originate\n" in text and "@@" not in text
    assert "\neventfilter = ^Event: (Newchannel|" in text  # the same filter as the packaged one
