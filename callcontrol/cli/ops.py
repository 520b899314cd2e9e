"""Commands that run things: the cells' sync into Asterisk, and the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from callcontrol.cli import asterisk_check, asterisk_render
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings

log = logging.getLogger("callcontrol.cli")


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `asterisk` and `run` commands."""
    ast = sub.add_parser("asterisk", help="Asterisk configuration generated from the database")
    ast_sub = ast.add_subparsers(
        dest="asterisk_command", required=True, metavar="sync|render|check"
    )
    sync = ast_sub.add_parser(
        "sync",
        parents=parents,
        help="write the cells' SIP endpoints and reload PJSIP",
        description="Render one PJSIP endpoint (digest auth) per enabled cell handset into "
        "pjsip_cells.conf ([asterisk] cells_conf, by default in [asterisk] astetcdir) and "
        "reload PJSIP through Asterisk's CLI control socket ([asterisk] cli_command + -rx: root "
        "or Asterisk's user; not AMI). A disabled handset is left out, so it can no longer "
        "place calls. The daemon does the same by itself within a second of a change "
        "([asterisk] sync_cells): this is for manual use.",
    )
    sync.add_argument(
        "--no-reload",
        action="store_true",
        help="write the file only; do not ask Asterisk to reload",
    )
    sync.set_defaults(handler=asterisk_sync)
    asterisk_render.register(ast_sub, parents)
    asterisk_check.register(ast_sub, parents)

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
    from callcontrol.adapters.asterisk.control import cells_conf_path as where

    return where(settings)


def reload_pjsip(settings: Settings) -> None:
    """Reload PJSIP through Asterisk's own CLI control socket (adapters/asterisk/control.py):
    not through AMI, whose account (the daemon's) has no `system` class."""
    from callcontrol.adapters.asterisk.control import AsteriskCliError
    from callcontrol.adapters.asterisk.control import reload_pjsip as reload

    try:
        reload(settings)
    except AsteriskCliError as e:
        raise CliError(str(e), EXIT_FAILED) from None


async def cells_file(settings: Settings) -> tuple[str, int]:
    """pjsip_cells.conf's text from the database's enabled cells, and how many there are."""
    from callcontrol.adapters.asterisk.pjsip_cells import render
    from callcontrol.adapters.db.cell_endpoints import opened

    async with opened(settings) as cells:
        _, rows = await cells.endpoints()
    try:
        text = render(rows)
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
