"""`callcontrol agi secret`: the FastAGI shared secret for a production Asterisk.

The lab makes the secret and renders it into its own extensions.conf. A production Asterisk
has its own configuration: this command makes the secret file and, with ``--globals FILE``,
writes the one dialplan line that carries it (``CC_AGI_URL = agi://HOST:PORT/SECRET``) into a
file of its own (0640, group [agi] secret_group) for extensions.conf's ``[globals]`` to
``#include``. The secret is never printed and never on a command line.
"""

from __future__ import annotations

import argparse
import grp
import os
import stat
from pathlib import Path

from callcontrol.adapters.agi.secret import (
    FILE_MODE,
    AgiSecretError,
    create_secret_file,
    read_secret_file,
)
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `agi secret` command."""
    agi = sub.add_parser("agi", help="the FastAGI link between Asterisk and the daemon")
    agi_sub = agi.add_subparsers(dest="agi_command", required=True, metavar="secret")
    secret = agi_sub.add_parser(
        "secret",
        parents=parents,
        help="check, make or render the FastAGI shared secret",
        description="Check the FastAGI shared secret file ([agi] secret_file, default "
        "var/agi-secret): every FastAGI request must carry it as the first path segment of "
        "Asterisk's CC_AGI_URL, and the daemon refuses to start without it. With --create, "
        "make it when missing (random, mode 0640, group [agi] secret_group). With --globals "
        "FILE, write the line `CC_AGI_URL = agi://HOST:PORT/SECRET` ([agi] host and port) to "
        "FILE (0640, same group), for `#include FILE` in the [globals] of Asterisk's "
        "extensions.conf; then `dialplan reload`. The secret itself is never printed.",
    )
    secret.add_argument(
        "--create", action="store_true", help="make the secret file if it is missing"
    )
    secret.add_argument(
        "--globals",
        metavar="FILE",
        type=Path,
        help="write the CC_AGI_URL line for extensions.conf's [globals] to FILE",
    )
    secret.set_defaults(handler=agi_secret_command)


def _write_globals(path: Path, url: str, group: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, FILE_MODE)
        if group:
            os.fchown(fd, -1, grp.getgrnam(group).gr_gid)
        f.write(
            "; Written by `callcontrol agi secret --globals`: the daemon's FastAGI address "
            "with its shared secret.\n"
            f"CC_AGI_URL = {url}\n"
        )


def agi_secret_command(args: argparse.Namespace, settings: Settings) -> int:
    agi = settings.agi
    path = settings.path(agi.secret_file)
    try:
        created = create_secret_file(path, agi.secret_group) if args.create else False
        secret = read_secret_file(path)
    except AgiSecretError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    info = path.stat()
    result: dict[str, object] = {
        "secret_file": str(path),
        "created": created,
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "group": grp.getgrgid(info.st_gid).gr_name,
    }
    text = f"FastAGI secret file {path}: " + ("created, " if created else "")
    text += f"mode {result['mode']}, group {result['group']}"
    if args.globals is not None:
        url = f"agi://{agi.host}:{agi.port}/{secret}"
        try:
            _write_globals(args.globals, url, agi.secret_group)
        except OSError as e:
            raise CliError(f"cannot write {args.globals}: {e.strerror}", EXIT_FAILED) from None
        result["globals"] = str(args.globals)
        text += f"\nCC_AGI_URL written to {args.globals}: #include it in extensions.conf's "
        text += "[globals], then `dialplan reload`"
    emit(args, result, text)
    return EXIT_OK
