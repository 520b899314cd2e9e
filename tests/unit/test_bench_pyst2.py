"""The pyst2 benchmark script's pieces that need no Asterisk: its settings file, its wiring
of the Authoriser (as the daemon's), its AGI transport over pyst2, and the copying of packages.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from asterisk.agi import AGI

from callcontrol import app
from callcontrol.adapters.agi.protocol import AgiError, AgiHangup
from callcontrol.config import (
    BillingSettings,
    DatabaseSettings,
    SecuritySettings,
    Settings,
    SiteSettings,
    load_settings,
)
from callcontrol_lab.bench import pyst2_agi, pyst2_root
from callcontrol_lab.lab import LabError
from tests.services.cell_call_args import agi_args, b64

PG = "postgresql+asyncpg://bench:pa%40ss@127.0.0.1:5432/callcontrol"


def site_settings(tmp_path: Path, url: str = PG) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        security=SecuritySettings(pin_secret_file=str(tmp_path / "pin-secret")),
        site=SiteSettings(region="GB", timezone="Europe/Paris", pin_tries_per_call=2),
        billing=BillingSettings(
            rounding="per_started_minute",
            max_call_s=1200,
            max_minutes_per_week=90,
            windows=("08:00-12:00", "13:00-20:30"),
            wing_windows=(("A", ("09:00-11:00",)), ('Wing "B"', ("10:00-12:00", "14:00-15:00"))),
        ),
        base_dir=tmp_path,
    )


def test_the_script_settings_are_the_daemons(tmp_path: Path) -> None:
    settings = site_settings(tmp_path)
    secret = settings.pin_secret(create=True)
    url = pyst2_root.script_database_url(settings, chrooted=True)
    path = tmp_path / "script.toml"
    path.write_text(pyst2_root.script_config(settings, url))
    read = load_settings(path, env={})
    assert read.site == settings.site and read.billing == settings.billing
    assert read.pin_secret() == secret
    assert read.database.url == PG  # the password survives, %-encoded as it was


def test_the_script_settings_with_nothing_special(tmp_path: Path) -> None:
    settings = Settings(
        security=SecuritySettings(pin_secret="s" * 20), database=DatabaseSettings(PG)
    )
    path = tmp_path / "script.toml"
    path.write_text(pyst2_root.script_config(settings, PG))
    read = load_settings(path, env={})
    assert (read.site, read.billing) == (settings.site, settings.billing)


def test_the_script_decides_with_the_daemons_policies(tmp_path: Path) -> None:
    settings = site_settings(tmp_path)
    settings.pin_secret(create=True)
    ours = pyst2_agi.build_authoriser(settings, None, None)  # type: ignore[arg-type]
    daemons = app.build_authoriser(settings, None, None)  # type: ignore[arg-type]
    assert ours.policy == daemons.policy
    assert ours.lockout == daemons.lockout
    assert ours.billing == daemons.billing
    assert ours._pin_secret() == daemons._pin_secret()


def test_the_database_must_be_postgresql_reachable_from_the_root(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="PostgreSQL"):
        pyst2_root.script_database_url(site_settings(tmp_path, "sqlite:///x.db"), chrooted=False)
    socket = "postgresql://postgres@/callcontrol?host=/run/postgresql"
    with pytest.raises(LabError, match="TCP"):
        pyst2_root.script_database_url(site_settings(tmp_path, socket), chrooted=True)
    # On the host a socket is fine; plain postgresql:// becomes asyncpg.
    url = pyst2_root.script_database_url(site_settings(tmp_path, socket), chrooted=False)
    assert url.startswith("postgresql+asyncpg://")


ARGS = agi_args("T01", "02079460000", "call,id@x", "1700000000.7")


def agi_over(replies: str) -> tuple[AGI, io.StringIO]:
    # As on the decision's Local channel: the call's own ids are in the arguments.
    env = "agi_channel: Local/decide@cc-decide-0001;2\nagi_uniqueid: 1700000000.9\n"
    env += "".join(f"agi_arg_{n}: {a}\n" for n, a in enumerate(ARGS, start=1)) + "\n"
    out = io.StringIO()
    return AGI(stdin=io.StringIO(env + replies), stdout=out, stderr=io.StringIO()), out


async def test_the_channel_speaks_the_daemons_commands_through_pyst2() -> None:
    agi, out = agi_over("200 result=1357\n200 result=1\n")
    channel = pyst2_agi.Pyst2Channel(agi)
    assert channel.args == ARGS
    assert (channel.channel, channel.uniqueid) == ("Local/decide@cc-decide-0001;2", "1700000000.9")
    assert await channel.get_data("agent-pass", 8000, 4) == ("1357", False)
    await channel.set_variable("CC_REASON", 'say "no"')
    assert out.getvalue().splitlines() == [
        "GET DATA agent-pass 8000 4",
        'SET VARIABLE CC_REASON "say \\"no\\""',
    ]
    assert channel.first_sent is not None and channel.last_digits is not None


@pytest.mark.parametrize(
    "reply",
    [
        "200 result=-1\n",  # GET DATA: the caller hung up
        "200 result=0 (hangup)\n",
        "511 Command Not Permitted on a dead channel or intercept routine\n",
        "",  # Asterisk closed the pipe
    ],
)
async def test_a_hangup_is_a_hangup_as_in_the_daemon(reply: str) -> None:
    channel = pyst2_agi.Pyst2Channel(agi_over(reply)[0])
    with pytest.raises(AgiHangup):
        await channel.get_data("agent-pass", 8000, 4)
    assert channel.hung_up
    with pytest.raises(AgiHangup):  # and nothing more is sent
        await channel.set_variable("CC_ANSWER", "allow:approved_contact:+442079460000:1800000:yes")


@pytest.mark.parametrize(
    "reply",
    [
        "510 Invalid or unknown command\n",
        "520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE\n"
        "520 End of proper usage.\n",
        "299 what\n",
    ],
)
async def test_a_refused_command_is_an_error(reply: str) -> None:
    channel = pyst2_agi.Pyst2Channel(agi_over(reply)[0])
    with pytest.raises(AgiError) as e:
        await channel.set_variable("CC_ANSWER", "refuse:not_approved")
    assert not isinstance(e.value, AgiHangup)


def test_the_timing_line() -> None:
    channel = pyst2_agi.Pyst2Channel(agi_over("")[0])
    channel.first_sent, channel.last_digits = 10.5, 12.0
    line = pyst2_agi.timing_line(channel, started=10.0, ended=12.25)
    fields = line.split()
    assert fields[0] == "1700000000.7" and fields[1] == "total=2250.0"
    assert fields[3:] == ["startup=500.0", "after_pin=250.0"]


def test_the_entry_script_runs_the_script_with_its_settings() -> None:
    text = pyst2_root.entry_script("/usr/bin/python3", "/x/lib", "/x/cc.toml", "/x/t.log")
    assert text.startswith("#!/usr/bin/python3 -I\n")
    compile(text, "cc-decide-pyst2", "exec")
    assert "sys.path.insert(0, '/x/lib')" in text
    assert "main(['--config', '/x/cc.toml', '--timings', '/x/t.log'], started=_STARTED)" in text
    on_host = pyst2_root.entry_script(sys.executable, None, "/x/cc.toml", None)
    assert "sys.path" not in on_host.split("import sys", 1)[1].split("from", 1)[0]


def test_packages_are_copied_once_and_kept_in_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    (src / "benchpkg" / "sub").mkdir(parents=True)
    (src / "benchpkg" / "__init__.py").write_text("")
    (src / "benchpkg" / "sub" / "m.py").write_text("X = 1\n")
    (src / "benchpkg" / "notes.txt").write_text("not code")
    (src / "benchmod.py").write_text("Y = 2\n")
    monkeypatch.syspath_prepend(str(src))
    lib = tmp_path / "lib"
    assert pyst2_root.sync_package("benchpkg", lib) == 2
    assert pyst2_root.sync_package("benchmod", lib) == 1
    assert (lib / "benchpkg" / "sub" / "m.py").read_text() == "X = 1\n"
    assert not (lib / "benchpkg" / "notes.txt").exists()
    assert pyst2_root.sync_package("benchpkg", lib) == 0  # nothing changed, nothing written
    (src / "benchpkg" / "sub" / "m.py").unlink()
    (src / "benchpkg" / "n.py").write_text("Z = 3\n")
    assert pyst2_root.sync_package("benchpkg", lib) == 1
    assert not (lib / "benchpkg" / "sub" / "m.py").exists()
    with pytest.raises(LabError, match="not installed"):
        pyst2_root.package_source("no_such_package_here")


class HostLab:
    """A lab on a system Asterisk (no root), its folders under a temporary one."""

    chrooted = False
    root = Path("/")

    def __init__(self, settings: Settings, base: Path) -> None:
        self.settings = settings
        self.lib_dir = str(base / "var-lib-callcontrol-lab-unit")

    def inside(self, path: str) -> Path:
        return Path(path)


def test_on_a_system_asterisk_the_script_runs_here_and_fails_closed(tmp_path: Path) -> None:
    # A database that refuses connections: the script must refuse the call, never allow it.
    settings = Settings(
        database=DatabaseSettings(url="postgresql://nobody@127.0.0.1:1/none"),
        security=SecuritySettings(pin_secret="unit-secret-0123456789"),
    )
    lab = HostLab(settings, tmp_path)
    entry = Path(pyst2_root.prepare(lab, timings=True))  # type: ignore[arg-type]
    assert entry.read_text().startswith(f"#!{sys.executable} -I\n")
    config = entry.with_name("callcontrol.toml")
    assert config.stat().st_mode & 0o777 == 0o600
    assert not (entry.parent / "lib").exists()  # nothing copied: this Python has it all
    assert pyst2_root.prepare(lab) == str(entry)  # again: the same script, timings now off
    args = agi_args("T01", "999", "c@x", "17.1")
    args[4] = b64("PJSIP/T01-0001")
    env = "agi_channel: Local/decide@cc-decide-0001;2\nagi_uniqueid: 17.2\n" + "".join(
        f"agi_arg_{n}: {value}\n" for n, value in enumerate(args, start=1)
    )
    env += "\n"
    proc = subprocess.run(
        [str(entry)], input=env + "200 result=1\n" * 3, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['SET VARIABLE CC_ANSWER "refuse:internal_error"']
    assert "deciding the call on PJSIP/T01-0001 failed" in proc.stderr
