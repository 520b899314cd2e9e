"""The packaged install: the wheel, installed in a fresh virtualenv outside the repository, runs a
prison with only what it carries. Its `callcontrol` upgrades a PostgreSQL database, keeps the
cells, prisoners and contacts, renders Asterisk's configuration, and its daemon decides, bridges
and bills a real call through an Asterisk started with nothing but that rendered configuration;
its `backup`, restored into a fresh database and folder, verifies and bills the next call.

The wheel is built offline (--no-build-isolation). Its dependencies come from PyPI, through
pip, once: they are kept as wheels in ~/.cache/callcontrol/wheelhouse, from which later runs
install without the network (as a netns without a route needs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from callcontrol.adapters.asterisk.render import modules_dir
from callcontrol.config import load_settings
from callcontrol_lab.simulator.calls import place_call
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.conftest import LAB_NAME

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path("~/.cache/callcontrol/wheelhouse").expanduser()
# Ports of its own: the e2e session's lab may be up at the same time.
PORTS = {"pjsip": 5260, "ami": 5238, "agi": 4773, "pstn": 5270, "http": 8288, "officers": 5290}
TAG = f"cc-wheel-{LAB_NAME}"


def _run(argv: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{proc.stderr[-3000:]}"
    return proc


def build_wheel(dist: Path) -> Path:
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(REPO)], 300)  # fmt: skip
    (wheel,) = dist.glob("callcontrol-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> float:
    """A fresh virtualenv with the wheel and its dependencies; returns the seconds it took."""
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], 120)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "-q"]
    offline = pip + ["--no-index", "--find-links", str(WHEELHOUSE), "--no-compile", str(wheel)]
    if subprocess.run(offline, capture_output=True, timeout=600).returncode != 0:
        # Once: the dependencies from PyPI, kept as wheels for the next runs.
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(WHEELHOUSE), str(wheel)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        for ours in WHEELHOUSE.glob("callcontrol-*.whl"):
            ours.unlink()
        if fetched.returncode != 0:
            pytest.fail(
                f"the wheel's dependencies are not in {WHEELHOUSE} and PyPI could not be reached "
                f"(run the test once with the network): {fetched.stderr.strip()[-500:]}"
            )
        _run(offline, 600)
    return time.monotonic() - started


@dataclass
class Site:
    venv: Path
    work: Path
    config: Path
    db_url: str
    root: Path
    conf: Path  # the rendered folder on the host (inside the root)

    def cc(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """The installed `callcontrol`, run outside the repository."""
        argv = [str(self.venv / "bin/callcontrol"), *args, "--config", str(self.config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}
        return _run(argv, 120, cwd=self.work, env=env, input=stdin)

    def sql(self, query: str, *params: object) -> list[asyncpg.Record]:
        async def fetch() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.db_url.replace("+asyncpg", ""))
            try:
                return await conn.fetch(query, *params)
            finally:
                await conn.close()

        return asyncio.run(fetch())


def write_config(site_dir: Path, db_url: str, root: Path) -> Path:
    """Settings as an operator writes them: Asterisk's folders in the root (one path both for
    Asterisk inside it and the daemon outside: /var/spool/TAG is a link into the root)."""
    config = site_dir / "callcontrol.toml"
    spool = f"/var/spool/{TAG}"
    config.write_text(f"""
base_dir = "{site_dir}"
[database]
url = "{db_url}"
[agi]
port = {PORTS["agi"]}
[ami]
port = {PORTS["ami"]}
reconnect_s = 0.5
[http]
port = {PORTS["http"]}
[asterisk]
pjsip_port = {PORTS["pjsip"]}
pstn_port = {PORTS["pstn"]}
officers_port = {PORTS["officers"]}
rtp_start = 32000
rtp_end = 33999
astetcdir = "/etc/{TAG}"
astmoddir = "{modules_dir(root)}"
astrundir = "/run/{TAG}"
astspooldir = "{spool}"
astlogdir = "/var/log/{TAG}"
astdbdir = "/var/lib/{TAG}"
journal_file = "{spool}/journal.log"
cells_conf = "{root}/etc/{TAG}/pjsip_cells.conf"
cli_command = ["chroot", "{root}", "asterisk", "-C", "/etc/{TAG}/asterisk.conf"]
ring_timeout_s = 10
[recording]
spool_dir = "{spool}/recordings"
[billing]
accept_timeout_s = 6
""")
    return config


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, wheel: Path, pg_url: str) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("wheel-site")
    took = install(wheel, base / "venv")
    print(f"\nfresh virtualenv with the wheel and its dependencies: {took:.0f} s")
    root = Path("~/.cache/callcontrol/asterisk-root").expanduser()
    assert (root / ".callcontrol-ready").exists(), f"no lab root at {root}: run make test"
    db_url = create_pg_database(pg_url, migrate=False)
    work = base / "site"
    work.mkdir()
    host_spool = Path(f"/var/spool/{TAG}")
    in_root = root / f"var/spool/{TAG}"
    in_root.mkdir(parents=True, exist_ok=True)
    if host_spool.is_symlink() or host_spool.exists():
        host_spool.unlink()
    host_spool.symlink_to(in_root)
    try:
        yield Site(base / "venv", work, write_config(work, db_url, root), db_url, root,
                   root / f"etc/{TAG}")  # fmt: skip
    finally:
        host_spool.unlink(missing_ok=True)
        drop_pg_database(pg_url, db_url)


def test_the_wheel_carries_the_data_and_not_the_lab(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "callcontrol/data/migrations/env.py",
        "callcontrol/data/migrations/versions/0001_initial.py",
        "callcontrol/data/dialplan/cells.conf",
        "callcontrol/data/asterisk/pjsip.conf",
        "callcontrol/data/asterisk/manager.conf",
        "callcontrol/data/asterisk/sounds/cc-refused.gsm",
    ):
        assert needed in names, f"{needed} is not in {wheel.name}"
    assert not [n for n in names if n.startswith("callcontrol_lab") or "bench" in n]


def start_daemon(site: Site, log_name: str) -> subprocess.Popen[bytes]:
    """The installed daemon on the site's configuration, once it is logged in to AMI."""
    dlog = site.work / log_name
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCONTROL_")}
    daemon = subprocess.Popen(
        [str(site.venv / "bin/callcontrol"), "run", "--config", str(site.config)],
        cwd=site.work, env=env, stdout=open(dlog, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while b"AMI: connected" not in dlog.read_bytes():
        assert daemon.poll() is None, dlog.read_text()[-2000:]
        assert time.monotonic() < deadline, f"daemon not ready:\n{dlog.read_text()[-2000:]}"
        time.sleep(0.1)
    return daemon


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    daemon.terminate()
    daemon.wait(timeout=15)


def call_and_settle(site: Site, password: str, local_port: int) -> dict[str, object]:
    """One call of W0001AA to the approved contact, connected; its decision and call rows
    once settled."""
    call = asyncio.run(
        place_call(
            cell="W01", dial="02079460000", pin="2468", hold=3.0,
            password=password, settings=load_settings(site.config, env={}),
            local_port=local_port, media_port=6200, called_party_media_port=16200,
        )
    )  # fmt: skip
    assert call.outcome == "connected", call
    deadline = time.monotonic() + 20
    while True:
        rows = site.sql(
            "SELECT d.outcome, d.reason, c.talk_seconds, c.charge_pence, c.settled_at "
            "FROM call_decisions d JOIN calls c ON c.decision_id = d.id "
            "WHERE d.sip_call_id = $1",
            call.sip_call_id,
        )
        if rows and rows[0]["settled_at"] is not None:
            return dict(rows[0])
        assert time.monotonic() < deadline, f"not settled: {rows}"
        time.sleep(0.25)


def test_an_installed_site_bills_a_call_and_is_restored(site: Site, pg_url: str) -> None:
    site.cc("db", "upgrade")
    made = json.loads(site.cc("cell", "add", "W01", "--json").stdout)
    site.cc("prisoner", "add", "W0001AA", "--name", "Wheel Test", "--pin-stdin", "--cell", "W01",
            stdin="2468\n")  # fmt: skip
    site.cc("account", "topup", "W0001AA", "500", "--reference", "wheel-first")
    site.cc("contact", "add", "W0001AA", "020 7946 0000", "--kind", "social")
    site.cc("contact", "approve", "W0001AA", "02079460000")
    site.cc("tariff", "set", "uk_landline", "--rate", "60")  # a penny a second: billed
    shutil.rmtree(site.conf, ignore_errors=True)
    rendered = json.loads(site.cc("asterisk", "render", "--to", str(site.conf), "--json").stdout)
    assert rendered["cells"] == 1 and "manager.conf" in rendered["files"]
    spool = Path(f"/var/spool/{TAG}")
    (spool / "recordings").mkdir(exist_ok=True)
    (spool / "journal.log").write_text("")  # Asterisk's FILE() appends to an existing file
    for folder in ("run", "var/log", "var/lib"):
        (site.root / folder / TAG).mkdir(parents=True, exist_ok=True)
    asterisk = ["chroot", str(site.root), "asterisk", "-C", f"/etc/{TAG}/asterisk.conf"]
    log = open(site.work / "asterisk.log", "wb")  # noqa: SIM115 - the process owns it
    ast = subprocess.Popen([*asterisk, "-f"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                           start_new_session=True)  # fmt: skip
    daemon = None
    restored_db = None
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([*asterisk, "-rx", "core waitfullybooted"], capture_output=True,
                             timeout=30).returncode != 0:  # fmt: skip
            assert ast.poll() is None and time.monotonic() < deadline, "Asterisk did not start"
            time.sleep(0.3)
        daemon = start_daemon(site, "daemon.log")
        row = call_and_settle(site, made["sip_password"], local_port=5280)
        assert (row["outcome"], row["reason"]) == ("allow", "approved_contact")
        assert row["talk_seconds"] >= 1 and row["charge_pence"] == row["talk_seconds"], row
        (balance,) = site.sql("SELECT balance_pence FROM accounts")
        assert balance["balance_pence"] == 500 - row["charge_pence"]

        # Its recording stored (and so in the backup) before the daemon stops.
        deadline = time.monotonic() + 30
        while not site.sql("SELECT id FROM recordings"):
            assert time.monotonic() < deadline, "the call's recording was never stored"
            time.sleep(0.25)

        # The site backed up, and restored into a fresh database and a fresh folder (its keys
        # and recordings): the restored site verifies, and its daemon, behind the same
        # Asterisk, decides the same prisoner's next call the same way from the same balance.
        stop_daemon(daemon)
        daemon = None
        backup = site.work.parent / "backup"
        site.cc("backup", "--to", str(backup))
        restored_db = create_pg_database(pg_url, migrate=False)
        work = site.work.parent / "restored"
        work.mkdir()
        restored = Site(site.venv, work, write_config(work, restored_db, site.root),
                        restored_db, site.root, site.conf)  # fmt: skip
        restored.cc("restore", "--from", str(backup))
        restored.cc("recordings", "verify")  # exits non-zero on a missing or altered one
        assert len(restored.sql("SELECT id FROM recordings")) == 1
        daemon = start_daemon(restored, "daemon-restored.log")
        again = call_and_settle(restored, made["sip_password"], local_port=5282)
        assert (again["outcome"], again["reason"]) == ("allow", "approved_contact")
        assert again["charge_pence"] == again["talk_seconds"] >= 1, again
        (balance,) = restored.sql("SELECT balance_pence FROM accounts")
        assert balance["balance_pence"] == 500 - row["charge_pence"] - again["charge_pence"]
    finally:
        if daemon is not None:
            stop_daemon(daemon)
        subprocess.run([*asterisk, "-rx", "core stop now"], capture_output=True, timeout=30)
        try:
            ast.wait(timeout=20)
        except subprocess.TimeoutExpired:
            ast.kill()
            ast.wait()
        log.close()
        if restored_db is not None:
            drop_pg_database(pg_url, restored_db)
