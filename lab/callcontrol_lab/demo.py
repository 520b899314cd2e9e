"""`make run`: the lab, the daemon and a demo prison on SQLite, with a burst of simulated calls.

Sets up everything (database, demo prison, the cells' endpoints in Asterisk), starts Asterisk
and the daemon, places a few simulated calls so that a newcomer sees connected and refused calls
and why, then keeps running until Ctrl-C, which stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from callcontrol.app import LOG_FORMAT, Daemon
from callcontrol.cli import main as cli
from callcontrol.config import Settings, load_settings

log = logging.getLogger("callcontrol_lab.demo")

# The demo prison: (cell, prisoner, name, PIN) and each prisoner's contacts.
PRISONERS = [  # cell, prison number, name, PIN, credit in pence
    ("A1-01", "A1234BC", "John Smith", "1234", 500),
    ("A1-02", "A2345CD", "David Jones", "2345", 500),
    ("A1-03", "A3456DE", "Peter Brown", "3456", 500),
    ("A1-04", "A4567EF", "Mark Taylor", "4567", 6),
]
CONTACTS = [
    # prisoner, number, kind, label, approve?
    ("A1234BC", "020 7946 0000", "social", "mother (landline)", True),
    ("A1234BC", "07911 123456", "social", "sister (mobile)", True),
    ("A1234BC", "020 7946 0999", "legal", "solicitor", True),
    ("A1234BC", "020 7946 0321", "social", "friend (awaiting approval)", False),
    ("A2345CD", "020 7946 0123", "social", "partner", True),
    ("A4567EF", "07911 123456", "social", "brother (mobile)", True),
]
GLOBAL_ALLOWED = [("116 123", "Samaritans", True)]
GLOBAL_BLOCKED = [("020 7946 0666", "victim: no contact")]


@dataclass(frozen=True)
class DemoCall:
    what: str
    cell: str
    pin: str
    dial: str
    hold: float = 4.0
    pin_tries: int = 1


WRONG_PIN_CELL = "A1-03"
BURST = [
    DemoCall("approved contact", "A1-01", "1234", "02079460000"),
    DemoCall("same number, international format", "A1-01", "1234", "00442079460000"),
    DemoCall("Samaritans (allowed for all, privileged)", "A1-02", "2345", "116123"),
    DemoCall("number not on the list", "A1-02", "2345", "02079460555"),
    DemoCall("contact still pending approval", "A1-01", "1234", "02079460321"),
    DemoCall("globally blocked number", "A1-03", "3456", "02079460666"),
    DemoCall("wrong PIN, three times", WRONG_PIN_CELL, "8642", "02079460000", pin_tries=3),
    DemoCall("emergency code (cells have call bells)", "A1-04", "4567", "999"),
    DemoCall("6p left: less than a minute to a mobile", "A1-04", "4567", "07911123456"),
]


def _cli(*args: str, config: str | None, stdin: str | None = None) -> int:
    """Run a `callcontrol` command in-process; ``stdin`` feeds its standard input (a PIN for
    --pin-stdin: PINs never go on a command line, even in the demo)."""
    argv = list(args) + (["--config", config] if config else [])
    if stdin is None:
        return cli(argv)
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        return cli(argv)
    finally:
        sys.stdin = saved


def seed(config: str | None, settings: Settings) -> None:
    """Create the demo prison unless it is there already."""
    if _cli("db", "upgrade", config=config) != 0:
        raise SystemExit("database upgrade failed")
    from callcontrol.adapters.db.engine import database_url, make_engine

    async def has_cells() -> bool:
        from sqlalchemy import text

        engine = make_engine(database_url(settings))
        try:
            async with engine.connect() as conn:
                return bool(await conn.scalar(text("SELECT count(*) FROM cells")))
        finally:
            await engine.dispose()

    if asyncio.run(has_cells()):
        log.info("demo prison already in the database")
        _known_passwords(config, settings)
        return
    log.info("creating the demo prison")
    for cell, number, name, pin, credit in PRISONERS:
        _cli("cell", "add", cell, "--wing", "A", config=config)
        _cli(
            "prisoner", "add", number, "--name", name, "--pin-stdin", "--cell", cell,
            config=config, stdin=f"{pin}\n",
        )  # fmt: skip
        _cli(
            "account", "topup", number, str(credit), "--reference", f"demo-{number}", config=config
        )
    for prisoner, number, kind, label, approve in CONTACTS:
        _cli("contact", "add", prisoner, number, "--kind", kind, "--label", label, config=config)
        if approve:
            _cli("contact", "approve", prisoner, number, config=config)
    for number, label, privileged in GLOBAL_ALLOWED:
        _cli(
            "number",
            "allow",
            number,
            "--label",
            label,
            *(["--privileged"] if privileged else []),
            config=config,
        )
    for number, label in GLOBAL_BLOCKED:
        _cli("number", "block", number, "--label", label, config=config)


def _known_passwords(config: str | None, settings: Settings) -> None:
    """The database keeps only the handsets' digest hashes: a demo cell whose password the
    lab's handsets file does not know (a database from before hashes) gets a new one."""
    from callcontrol_lab import handsets

    known = handsets.recall(handsets.path_of(settings))
    for cell, *_ in PRISONERS:
        if cell not in known:
            log.info("demo cell %s: a new SIP password (the lab did not know its own)", cell)
            _cli("cell", "set-password", cell, "--json", config=config)


DEMO_STAFF = "admin"


def staff_admin(config: str | None, settings: Settings) -> str:
    """The demo's staff console administrator: made on the first run with a random password,
    which is returned to be printed once (the staff file keeps only its hash). Later runs say
    how to set a new one."""
    from callcontrol.adapters.web.staff_file import read_accounts
    from callcontrol.domain.staff import StaffError, check_password

    url = f"http://{settings.http.host}:{settings.http.port}/console/"
    if any(
        a.username == DEMO_STAFF for a in read_accounts(settings.path(settings.console.staff_file))
    ):
        return (
            f"Staff console: {url}  (user {DEMO_STAFF}; a new password: .venv/bin/callcontrol "
            f"staff passwd {DEMO_STAFF} --config {config})"
        )
    while True:
        password = secrets.token_urlsafe(12)
        try:
            check_password(password, DEMO_STAFF)
            break
        except StaffError:
            continue
    done = _cli(
        "staff", "add", DEMO_STAFF, "--role", "admin", "--name", "Demo Administrator",
        "--password-stdin", "--by", "demo", config=config, stdin=password + "\n",
    )  # fmt: skip
    if done != 0:
        return "Staff console: could not make the demo's administrator (see above)"
    return (
        f"Staff console: {url}  user {DEMO_STAFF}, password {password}\n"
        "  (shown this once: only its hash is kept; `callcontrol staff add` makes accounts for "
        "officers, admins and auditors)"
    )


async def burst(settings: Settings, config: str | None) -> None:
    """Place the demo calls one after another with `callcontrol-sim call`, and show each."""
    sim = str(Path(sys.executable).parent / "callcontrol-sim")
    # The wrong-PIN call's handset keeps its wrong PINs of earlier runs: a few runs would lock
    # it (see docs/security-pins.md). Each demo starts it afresh, audited like any unlock.
    why = "make run: the demo's wrong-PIN call starts afresh"
    await asyncio.to_thread(_cli, "cell", "unlock", WRONG_PIN_CELL, "--reason", why, "--by", "demo",
                            config=config)  # fmt: skip
    print("\n--- a burst of simulated calls (callcontrol-sim call ...) " + "-" * 24)
    for call in BURST:
        argv = [
            sim,
            "call",
            "--cell",
            call.cell,
            "--pin",
            call.pin,
            "--dial",
            call.dial,
            "--hold",
            str(call.hold),
            "--pin-tries",
            str(call.pin_tries),
            "--port",
            str(settings.asterisk.pjsip_port),
            "--called-party-port",
            str(settings.asterisk.pstn_port),
        ]
        if config:
            argv += ["--config", config]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        try:
            result = json.loads(out.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            print(f"{call.what:42s} could not be placed: {err.decode().strip()[:200]}")
            continue
        outcome = str(result.get("outcome", "?")).upper()
        if result.get("outcome") == "connected":
            extra = (
                f"talked {result.get('talk_s') or 0:.1f} s, "
                f"decided and rang {result.get('post_pin_ms') or 0:.0f} ms after the PIN"
            )
        else:
            extra = f"reason={result.get('reason') or 'unknown'}"
        print(f"{call.what:42s} {call.cell} dials {call.dial:14s} -> {outcome:9s} {extra}")
    print("-" * 80 + "\n")


async def serve(settings: Settings, config: str | None, calls: bool, console: str = "") -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run(stop))
    started = asyncio.create_task(daemon.started.wait())
    await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        await task  # raises why it could not start
    assert daemon.ami is not None
    try:
        await daemon.ami.wait_connected(timeout=15)
    except TimeoutError:
        log.warning("the daemon is not connected to AMI yet; calls are decided all the same")
    if calls:
        await burst(settings, config)
    print("The daemon is running; every decision is logged below. Ctrl-C stops everything.")
    if console:
        print(console)
    print(
        "Place a call yourself:  .venv/bin/callcontrol-sim call --cell A1-01 --pin 1234 "
        f"--dial 02079460000 --hold 5 --config {config}"
    )
    await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m callcontrol_lab.demo",
        description="Start the Asterisk lab, the daemon and a demo prison (SQLite), place a "
        "burst of simulated calls, and run until Ctrl-C.",
    )
    parser.add_argument("--config", help="a TOML settings file (default: built-in defaults)")
    parser.add_argument("--no-calls", action="store_true", help="skip the burst of calls")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The demo runs the lab: its commands and daemon (children, which inherit this) may use
    # the lab's conveniences, which are refused elsewhere ([lab] enabled).
    os.environ.setdefault("CALLCONTROL_LAB_ENABLED", "true")
    settings = load_settings(args.config)
    settings.pin_secret(create=True)
    from callcontrol_lab.lab import Lab, LabError

    lab = Lab(settings)
    try:
        status = lab.up()
        # From here on, everything (the commands, the daemon, the simulated handsets) reads the
        # lab's settings file: the given settings plus where the lab's Asterisk keeps things.
        config = str(lab.write_settings(Path(args.config) if args.config else None))
    except LabError as e:
        print(f"callcontrol: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"lab": status.name, "sip": status.pjsip, "ami": status.ami}))
    print(f"Settings for other commands: .venv/bin/callcontrol --config {config} ...")
    try:
        settings = load_settings(config)
        seed(config, settings)
        console = staff_admin(config, settings)
        if _cli("asterisk", "sync", config=config) != 0:
            return 1
        asyncio.run(serve(settings, config, not args.no_calls, console))
    finally:
        lab.down()
        print("lab stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
