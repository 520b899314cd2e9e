"""The `callcontrol` command: the operator's tool and the daemon's launcher.

Every command reads the settings (defaults, then ``--config FILE``, then ``CALLCONTROL_*``
environment variables). Errors are one line on stderr, ``callcontrol: error: ...``, with exit
status 2 for bad arguments or refused input (nothing was written) and 1 when the command could
not be carried out (database unreachable, schema not current, ...).

A command is a parser whose default ``handler`` is a Handler (see common.py); ``command()`` and
``group()`` here build them with the shared ``--config`` and ``--json`` options.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.engine import (
    DatabaseError,
    check_schema_current,
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.cli.common import EXIT_FAILED, EXIT_USAGE, CliError, Handler, call_handler, fail
from callcontrol.config import ConfigError, Settings, load_settings
from callcontrol.services.errors import (
    AsteriskActionLost,
    AsteriskFailed,
    AsteriskUnavailable,
    ServiceError,
)

DESCRIPTION = """\
Call control for in-cell prison telephones, beside Asterisk.

Operators use it to keep the database: cells and their handsets, prisoners and their PINs,
each prisoner's contact list, and numbers blocked or allowed for everyone. It also runs the
daemon that decides every call, and writes Asterisk's configuration (asterisk render, sync).
"""

EPILOG = """\
Settings come from the defaults, then the TOML file given with --config (or named by
CALLCONTROL_CONFIG), then environment variables CALLCONTROL_<SECTION>_<KEY>, for example
CALLCONTROL_DATABASE_URL=postgresql+asyncpg://callcontrol@db/callcontrol.

Run `callcontrol COMMAND --help` for the details of a command. Exit status: 0 done; 1 could
not be done (database unreachable, ...); 2 bad arguments or refused input, nothing written.
"""

Parents = list[argparse.ArgumentParser]
_FORMAT = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        name = self.prog.split()[0]  # callcontrol, or callcontrol-lab
        self.exit(EXIT_USAGE, f"{name}: error: {message} (see `{self.prog} --help`)\n")


def common_options() -> argparse.ArgumentParser:
    """--config and --json, accepted before or after the command's name."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command is not reset by the command's own parser.
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="settings file (TOML); environment variables CALLCONTROL_* override it",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as one JSON document",
    )
    return common


def group(sub: argparse._SubParsersAction, name: str, help: str, description: str) -> Any:
    """A command with subcommands (``callcontrol NAME ACTION``); returns their subparsers."""
    parser = sub.add_parser(name, help=help, description=description)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def command(
    sub: argparse._SubParsersAction,
    name: str,
    parents: Parents,
    handler: Handler,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A command run by ``handler``, with the shared options."""
    parser = sub.add_parser(name, parents=parents, help=help, description=description)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    import callcontrol.cli.journal as journal_commands
    from callcontrol.cli import admin, alerts, billing, ops, recordings, supervise  # helpers
    from callcontrol.cli import agi as agi_cli
    from callcontrol.cli import ami as ami_cli
    from callcontrol.cli import backup as backup_cli
    from callcontrol.cli import pin_secret as pin_secret_cli
    from callcontrol.cli import provision as provision_cli
    from callcontrol.cli import staff as staff_cli
    from callcontrol.cli import systemd as systemd_cli

    parents = [common_options()]
    parser = Parser(
        prog="callcontrol",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=parents,
        formatter_class=_FORMAT,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(sub, parents)
    billing.register(sub, parents)
    journal_commands.register(sub, parents)
    ops.register(sub, parents)
    recordings.register(sub, parents)
    supervise.register(sub, parents)
    agi_cli.register(sub, parents)
    ami_cli.register(sub, parents)
    alerts.register(sub, parents)
    systemd_cli.register(sub, parents)
    pin_secret_cli.register(sub, parents)
    backup_cli.register(sub, parents)
    provision_cli.register(sub, parents)
    staff_cli.register(sub, parents)
    return parser


def one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    return run(build_parser(), argv)


def run(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, prog: str = "callcontrol"
) -> int:
    """Parse ``argv`` with ``parser`` and run the chosen handler on the settings; errors
    are one line, ``PROG: error: ...`` (the lab's command shares this)."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, already printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    try:
        settings = load_settings(getattr(args, "config", None))
        return call_handler(args.handler, args, settings)
    except CliError as e:
        return fail(one_line(str(e)), e.status, prog)
    except ConfigError as e:
        return fail(one_line(str(e)), EXIT_USAGE, prog)
    except KeyboardInterrupt:
        return fail("interrupted", 130, prog)


# --- for the commands that use the database ----------------------------------------------------


def db_reason(e: BaseException) -> str:
    """What went wrong in a database error, in one line (without the SQL)."""
    text = str(getattr(e, "orig", None) or e)
    return one_line(text) if text.strip() else type(e).__name__


def service_status(e: ServiceError) -> int:
    """A service's refusal is exit status 2 (nothing written); Asterisk's trouble, 1."""
    failed = (AsteriskUnavailable, AsteriskActionLost, AsteriskFailed)
    return EXIT_FAILED if isinstance(e, failed) else EXIT_USAGE


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the settings' database, whose schema must be current.

    A service's refusal (services/errors.py) becomes a CliError with exit status 2 (refused,
    nothing written; 1 for Asterisk's trouble); an unreachable database, a schema that is not
    current or a failing database, exit status 1. The engine is disposed of at the end.
    """
    engine = make_engine(database_url(settings))
    try:
        await check_schema_current(engine)
        yield session_factory(engine)
    except ServiceError as e:
        raise CliError(str(e), service_status(e)) from None
    except DatabaseError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    except (OSError, TimeoutError, DBAPIError) as e:
        raise CliError(f"database error: {db_reason(e)}", EXIT_FAILED) from None
    finally:
        await engine.dispose()


@asynccontextmanager
async def admin_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """One session on ``database(settings)``: committed when the block ends normally, rolled
    back otherwise."""
    async with database(settings) as sessions, sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


def who(args: argparse.Namespace) -> str:
    """Who makes a change: --by, else the login name."""
    if getattr(args, "by", None):
        return str(args.by)
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def row(obj: object, fields: Sequence[str], **extra: Any) -> dict[str, Any]:
    """Some attributes of a row as plain values (times in ISO 8601), plus ``extra``."""
    values = {f: getattr(obj, f) for f in fields} | extra
    return {
        k: v.isoformat(timespec="seconds") if isinstance(v, datetime) else v
        for k, v in values.items()
    }


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], empty: str) -> str:
    """Rows as aligned text columns (or ``empty`` when there are none)."""
    if not rows:
        return empty
    lines = [[c.upper() for c in columns]]
    lines += [["-" if r[c] in (None, "") else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
