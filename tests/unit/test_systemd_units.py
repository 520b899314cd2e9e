"""The systemd units `callcontrol systemd units` renders: systemd's own checker passes them with
no warning, their sandbox scores low, and the commands they run are accepted by the CLI.

`systemd-analyze verify` needs no running systemd: it loads the files as PID 1 would, and checks
every directive and that each ExecStart names an executable file, so the units are rendered
with this installation's real `callcontrol` script.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callcontrol.adapters.db.engine import upgrade
from callcontrol.cli import main
from callcontrol.config import AsteriskSettings, Settings
from callcontrol.systemd_units import UNITS, writable_paths
from tests.protocol.daemon_proc import clean_env, write_config

ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
BIN = Path(sys.executable).parent


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(ANALYZE).exists():
        pytest.fail("systemd-analyze is missing: install Debian's systemd package", pytrace=False)
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
    )


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A site's configuration (its spool and journal outside /var/lib/callcontrol) and the
    units rendered from it into a folder of their own."""
    config = write_config(tmp_path, ami_port=5038)  # spool and journal in tmp_path
    units = tmp_path / "units"
    # Asterisk's binary must exist for `systemd-analyze verify`: this host has none of its own.
    argv = ["systemd", "units", "--to", str(units), "--config", str(config)]
    assert main([*argv, "--asterisk", "/bin/true", "--asterisk-user", "root"]) == 0
    return config, units


def test_systemd_analyze_verify_passes_with_no_warning(site: tuple[Path, Path]) -> None:
    _, units = site
    files = sorted(str(p) for p in units.iterdir())
    assert [Path(f).name for f in files] == sorted(UNITS)
    proc = analyze("verify", "--man=no", *files)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_the_same_check_catches_a_mistake(site: tuple[Path, Path]) -> None:
    """The check above can fail: a misspelt sandbox key, or a script that is not there."""
    _, units = site
    service = units / "callcontrol.service"
    text = service.read_text()
    service.write_text(text.replace("ProtectSystem=strict", "ProtectSytem=strict"))
    proc = analyze("verify", "--man=no", str(service))
    assert "Unknown key 'ProtectSytem'" in proc.stderr
    exec_line = re.search(r"^ExecStart=(\S+)", text, re.M)
    assert exec_line is not None
    service.write_text(text.replace(exec_line[1], "/nonexistent/callcontrol"))
    proc = analyze("verify", "--man=no", str(service))
    assert proc.returncode != 0 and "/nonexistent/callcontrol" in proc.stderr


def test_the_daemon_unit(site: tuple[Path, Path]) -> None:
    config, units = site
    unit = (units / "callcontrol.service").read_text()
    lines = set(unit.splitlines())
    for expected in (
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "WatchdogSec=60s",
        "User=callcontrol",
        "SupplementaryGroups=asterisk",
        "After=network-online.target asterisk.service postgresql.service",
        "Wants=network-online.target asterisk.service postgresql.service",
        f"ExecStart={BIN / 'callcontrol'} run",
        f"Environment=CALLCONTROL_CONFIG={config}",
        "WorkingDirectory=/var/lib/callcontrol",
        "StateDirectory=callcontrol",
        "ProtectSystem=strict",
        # Written by the daemon outside the state directory: the spool and the journal's folder.
        f"ReadWritePaths=-{config.parent}",  # the journal's folder, the spool and store inside
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "UMask=0077",
    ):
        assert expected in lines, expected
    # (the cells' file's folder too, which the daemon rewrites: [asterisk] sync_cells)
    assert sum(line.startswith("ReadWritePaths=") for line in lines) == 1
    # systemd's own exposure score for the sandbox (0 best, 10 worst; "OK" is below 5).
    proc = analyze("security", "--offline=true", str(units / "callcontrol.service"))
    score = re.search(r"Overall exposure level for callcontrol.service: ([\d.]+)", proc.stdout)
    assert score is not None, proc.stdout + proc.stderr
    assert float(score[1]) <= 2.0, proc.stdout


def test_the_timers_run_commands_the_cli_accepts(site: tuple[Path, Path]) -> None:
    """What callcontrol-purge and callcontrol-verify run, run here as the units would run it
    (CALLCONTROL_CONFIG from the unit): both succeed on a fresh site."""
    config, units = site
    for name, when in (("purge", "03:30:00"), ("verify", "04:30:00")):
        timer = (units / f"callcontrol-{name}.timer").read_text()
        assert f"OnCalendar=*-*-* {when}" in timer and "Persistent=true" in timer
    env = {**clean_env(), "CALLCONTROL_CONFIG": str(config)}
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{config.parent}/cc.sqlite3"))
    for name, expected in (("purge", "recordings purge"), ("verify", "recordings verify")):
        unit = (units / f"callcontrol-{name}.service").read_text()
        assert "Type=oneshot" in unit
        [command] = re.findall(r"^ExecStart=(.+)$", unit, re.M)
        argv = shlex.split(command)
        assert " ".join(argv[1:3]) == expected
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_values_that_cannot_go_into_a_unit_are_refused(tmp_path: Path, capsys) -> None:
    for args in (
        ["--exec", "/opt/call control/bin/callcontrol"],  # a space would split ExecStart
        ["--user", "root;rm"],
        ["--asterisk-group", "Bad Group"],
    ):
        assert main(["systemd", "units", "--to", str(tmp_path / "u"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("callcontrol: error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "u").exists()


def test_sysusers(capsys) -> None:
    assert main(["systemd", "sysusers"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x and not x.startswith("#")]
    assert lines == ['u callcontrol - "callcontrol call control" /var/lib/callcontrol',
                     "m callcontrol asterisk"]  # fmt: skip


def test_the_cells_file_is_watched_and_reloaded_as_asterisk(site: tuple[Path, Path]) -> None:
    """With [asterisk] reload_cells = "none" the daemon only rewrites the cells' file (in a
    folder the sandbox lets it write); the path unit has PJSIP reloaded as Asterisk's user."""
    config, units = site
    cells = config.parent / "pjsip_cells.conf"
    path_unit = (units / "callcontrol-cells.path").read_text().splitlines()
    assert f"PathChanged={cells}" in path_unit
    assert "Unit=callcontrol-cells-reload.service" in path_unit
    reload = (units / "callcontrol-cells-reload.service").read_text().splitlines()
    assert 'ExecStart=/bin/true -rx "module reload res_pjsip.so"' in reload
    assert "User=root" in reload and "CapabilityBoundingSet=" in reload
    daemon = (units / "callcontrol.service").read_text().splitlines()
    assert f"ReadWritePaths=-{config.parent}" in daemon  # the cells' folder


@pytest.mark.parametrize("sync", [True, False])
def test_the_cells_folder_is_writable_only_when_the_daemon_syncs(sync: bool) -> None:
    asterisk = AsteriskSettings(cells_conf="/etc/asterisk/callcontrol/pjsip_cells.conf",
                                sync_cells=sync)  # fmt: skip
    paths = writable_paths(Settings(asterisk=asterisk))
    assert (Path("/etc/asterisk/callcontrol") in paths) is sync
