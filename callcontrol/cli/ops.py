"""Commands that run things: the cells' sync into Asterisk, and the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
from pathlib import Path

from sqlalchemy import select

from callcontrol.adapters.asterisk.pjsip_cells import CELLS_CONF
from callcontrol.cli import asterisk_render
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings

log = logging.getLogger("callcontrol.cli")


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `asterisk` and `run` commands."""
    ast = sub.add_parser("asterisk", help="Asterisk configuration generated from the database")
    ast_sub = ast.add_subparsers(dest="asterisk_command", required=True, metavar="sync|render")
    sync = ast_sub.add_parser(
        "sync",
        parents=parents,
        help="write the cells' SIP endpoints and reload PJSIP",
        description="Render one PJSIP endpoint (digest auth) per enabled cell handset into "
        "pjsip_cells.conf ([asterisk] cells_conf, by default in [asterisk] astetcdir) and "
        "reload PJSIP through Asterisk's CLI control socket ([asterisk] cli_command + -rx: root "
        "or Asterisk's user; not AMI). A disabled handset is left out, so it can no longer "
        "place calls.",
    )
    sync.add_argument(
        "--no-reload",
        action="store_true",
        help="write the file only; do not ask Asterisk to reload",
    )
    sync.set_defaults(handler=asterisk_sync)
    asterisk_render.register(ast_sub, parents)

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


def cells_conf_path(settings: Settings) -> Path:
    """Where `asterisk sync` writes the cells' endpoints: [asterisk] cells_conf, else
    pjsip_cells.conf in Asterisk's configuration folder ([asterisk] astetcdir)."""
    a = settings.asterisk
    return settings.path(a.cells_conf or f"{a.astetcdir}/{CELLS_CONF}")


PJSIP_RELOAD = "module reload res_pjsip.so"


def reload_pjsip(settings: Settings) -> None:
    """Reload PJSIP through Asterisk's own CLI control socket (``asterisk -rx``), which needs
    the local rights of Asterisk's user or root: not through AMI, whose account (the daemon's)
    has no `system` class, so that its secret cannot reload or rewrite Asterisk's configuration.
    The command is [asterisk] cli_command (the lab's chroot form in the lab) + -rx."""
    argv = [*settings.asterisk.cli_command, "-rx", PJSIP_RELOAD]
    shown = " ".join(settings.asterisk.cli_command) + " -rx"
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CliError(f"`{shown}` failed: {e}", EXIT_FAILED) from None
    if proc.returncode != 0:
        why = " ".join((proc.stderr or proc.stdout).split()) or f"status {proc.returncode}"
        raise CliError(f"`{shown}` failed: {why}", EXIT_FAILED)
    out = proc.stdout
    if "reloaded" not in out.lower() and "queued" not in out.lower():
        raise CliError(f"Asterisk did not reload PJSIP: {' '.join(out.split())}", EXIT_FAILED)


async def cells_file(settings: Settings) -> tuple[str, int]:
    """pjsip_cells.conf's text from the database's enabled cells, and how many there are."""
    from callcontrol.adapters.asterisk.pjsip_cells import CellEndpoint, render
    from callcontrol.adapters.db import tables as m
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
    return text, len(rows)


async def asterisk_sync(args: argparse.Namespace, settings: Settings) -> int:
    from callcontrol.adapters.asterisk.pjsip_cells import write_atomically

    text, count = await cells_file(settings)
    path = cells_conf_path(settings)
    changed = write_atomically(path, text)
    result = {"file": str(path), "handsets": count, "changed": changed, "reloaded": False}
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
                else f"wrote {count} handset(s) to {path}, but could not reload PJSIP: {e}",
            )
            return EXIT_FAILED
    emit(
        args,
        result,
        f"{count} enabled handset(s) written to {path}"
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
