"""Commands that run things: the Asterisk lab, the cells' sync into Asterisk, and the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
from pathlib import Path

from sqlalchemy import select

from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings

log = logging.getLogger("callcontrol.cli")


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `lab`, `asterisk` and `run` commands."""
    lab = sub.add_parser(
        "lab",
        help="the Asterisk lab: Asterisk 22 running this repository's configuration",
        description="Start, stop or show the Asterisk lab. Asterisk comes from the PATH when a "
        "version 20 or newer is there, otherwise from a Debian sid root built once into "
        "[lab] root (default ~/.cache/callcontrol/asterisk-root). Everything binds to "
        "127.0.0.1; the ports come from the settings.",
    )
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, metavar="up|down|status")
    up = lab_sub.add_parser(
        "up",
        parents=parents,
        help="set up and start the lab (idempotent)",
        description="Build the Asterisk root if needed, write the "
        "configuration and start Asterisk. If it runs already, the "
        "configuration is written again and reloaded.",
    )
    up.set_defaults(handler=lab_up)
    down = lab_sub.add_parser(
        "down",
        parents=parents,
        help="stop the lab's Asterisk",
        description="Stop the lab's Asterisk; leaves no process behind.",
    )
    down.set_defaults(handler=lab_down)
    status = lab_sub.add_parser(
        "status",
        parents=parents,
        help="say what runs where",
        description="Show whether the lab runs, and its ports, "
        "folders and log file. Exit status 0 when it runs, 1 when not.",
    )
    status.set_defaults(handler=lab_status)

    ast = sub.add_parser("asterisk", help="Asterisk configuration generated from the database")
    ast_sub = ast.add_subparsers(dest="asterisk_command", required=True, metavar="sync")
    sync = ast_sub.add_parser(
        "sync",
        parents=parents,
        help="write the cells' SIP endpoints and reload PJSIP",
        description="Render one PJSIP endpoint (digest auth) per enabled cell handset into "
        "pjsip_cells.conf ([asterisk] cells_conf, by default the lab's configuration folder) "
        "and reload PJSIP through Asterisk's CLI control socket (`asterisk -rx`: root or "
        "Asterisk's user; not AMI). A disabled handset is left out, so it can no longer "
        "place calls.",
    )
    sync.add_argument(
        "--no-reload",
        action="store_true",
        help="write the file only; do not ask Asterisk to reload",
    )
    sync.set_defaults(handler=asterisk_sync)

    run = sub.add_parser(
        "run",
        parents=parents,
        help="run the call-control daemon (FastAGI + AMI)",
        description="Run the daemon beside Asterisk until SIGINT or SIGTERM: it decides every "
        "cell call over FastAGI ([agi] host/port) and follows calls over AMI ([ami]). Logs go "
        "to stderr, one line per decision: readable text, or JSON lines with [log] format = "
        '"json" (each line of a call then names it). Under systemd (Type=notify) it reports '
        "READY=1 once FastAGI listens, AMI is logged in and the database is at the latest "
        "schema; GET /ready on the [http] server answers the same.",
    )
    run.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default [log] level (INFO)",
    )
    run.set_defaults(handler=run_daemon)


def _lab(settings: Settings):  # imported late: the lab is not needed by the other commands
    from callcontrol.lab.lab import Lab, LabError

    try:
        return Lab(settings)
    except LabError as e:
        raise CliError(str(e), EXIT_FAILED) from None


def lab_up(args: argparse.Namespace, settings: Settings) -> int:
    from callcontrol.lab.lab import LabError

    try:
        status = _lab(settings).up()
    except LabError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    emit(
        args,
        status.as_dict(),
        f"lab {status.name}: Asterisk running (pid {status.pid})\n"
        f"  SIP {status.pjsip}, AMI {status.ami}, daemon expected at {status.agi}\n"
        f"  called parties at {status.pstn}; configuration in {status.conf_dir}\n"
        f"  log: {status.log_file}",
    )
    return EXIT_OK


def lab_down(args: argparse.Namespace, settings: Settings) -> int:
    lab = _lab(settings)
    was = lab.down()
    emit(
        args,
        {"name": lab.name, "stopped": was},
        f"lab {lab.name}: " + ("Asterisk stopped" if was else "was not running"),
    )
    return EXIT_OK


def lab_status(args: argparse.Namespace, settings: Settings) -> int:
    status = _lab(settings).status()
    if status.running:
        text = (
            f"lab {status.name}: running (pid {status.pid})\n  {status.version}\n"
            f"  SIP {status.pjsip}, AMI {status.ami}, daemon at {status.agi}, "
            f"called parties at {status.pstn}\n  root {status.root}\n"
            f"  configuration {status.conf_dir}\n  log {status.log_file}"
        )
    else:
        text = f"lab {status.name}: not running (root {status.root})"
    emit(args, status.as_dict(), text)
    return EXIT_OK if status.running else EXIT_FAILED


def cells_conf_path(settings: Settings) -> Path:
    if settings.asterisk.cells_conf:
        return settings.path(settings.asterisk.cells_conf)
    return _lab(settings).cells_conf_path


PJSIP_RELOAD = "module reload res_pjsip.so"


def reload_pjsip(settings: Settings) -> None:
    """Reload PJSIP through Asterisk's own CLI control socket (``asterisk -rx``), which needs
    the local rights of Asterisk's user or root: not through AMI, whose account (the daemon's)
    has no `system` class, so that its secret cannot reload or rewrite Asterisk's configuration.
    The lab's Asterisk when ``[asterisk] cells_conf`` is the lab's, else the one on the PATH."""
    from callcontrol.lab.lab import LabError

    if not settings.asterisk.cells_conf:
        try:
            out = _lab(settings).rx(PJSIP_RELOAD)
        except LabError as e:
            raise CliError(str(e), EXIT_FAILED) from None
    else:
        try:
            proc = subprocess.run(
                ["asterisk", "-rx", PJSIP_RELOAD], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise CliError(f"`asterisk -rx` failed: {e}", EXIT_FAILED) from None
        if proc.returncode != 0:
            why = " ".join((proc.stderr or proc.stdout).split()) or f"status {proc.returncode}"
            raise CliError(f"`asterisk -rx` failed: {why}", EXIT_FAILED)
        out = proc.stdout
    if "reloaded" not in out.lower() and "queued" not in out.lower():
        raise CliError(f"Asterisk did not reload PJSIP: {' '.join(out.split())}", EXIT_FAILED)


async def asterisk_sync(args: argparse.Namespace, settings: Settings) -> int:
    from callcontrol.adapters.asterisk.pjsip_cells import CellEndpoint, render, write_atomically
    from callcontrol.adapters.db import models as m
    from callcontrol.adapters.db.engine import check_schema_current, database_url, make_engine

    engine = make_engine(database_url(settings))
    try:
        await check_schema_current(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        m.Cell.name, m.Cell.sip_username, m.Cell.sip_realm, m.Cell.sip_md5_cred
                    ).where(m.Cell.enabled.is_(True))
                )
            ).all()
    finally:
        await engine.dispose()
    try:
        text = render(
            CellEndpoint(r.name, r.sip_username, r.sip_realm, r.sip_md5_cred) for r in rows
        )
    except ValueError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    path = cells_conf_path(settings)
    changed = write_atomically(path, text)
    result = {"file": str(path), "handsets": len(rows), "changed": changed, "reloaded": False}
    if not args.no_reload:
        try:
            reload_pjsip(settings)
            result["reloaded"] = True
        except CliError as e:
            emit(
                args,
                result,
                None
                if getattr(args, "json", False)
                else f"wrote {len(rows)} handset(s) to {path}, but could not reload PJSIP: {e}",
            )
            return EXIT_FAILED
    emit(
        args,
        result,
        f"{len(rows)} enabled handset(s) written to {path}"
        + (" and PJSIP reloaded" if result["reloaded"] else ""),
    )
    return EXIT_OK


def run_daemon(args: argparse.Namespace, settings: Settings) -> int:
    from callcontrol import logging_setup
    from callcontrol.app import run_until_signalled
    from callcontrol.config import ConfigError

    logging_setup.configure(settings.log.format, args.log_level or settings.log.level)
    try:
        asyncio.run(run_until_signalled(settings))
    except ConfigError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    return EXIT_OK
