"""`callcontrol ami secret`: the daemon's AMI secret and manager.conf for a production Asterisk.

The lab makes the secret and renders it into its own manager.conf. A production Asterisk has its
own configuration: this command makes the secret file ([ami] secret_file, random, mode 0600)
and, with ``--manager FILE``, renders this repository's manager.conf with it (the daemon's
least-privilege account, loopback only, with the eventfilter that lets through only the events
the daemon uses) into FILE, mode 0600, for Asterisk's configuration folder. The secret is never
printed and never on a command line.
"""

from __future__ import annotations

import argparse
import re
import stat
from pathlib import Path

from callcontrol import private_files
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import ConfigError, Settings
from callcontrol.resources import asterisk_templates_dir

MANAGER_CONF = asterisk_templates_dir() / "manager.conf"


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the `ami secret` command."""
    ami = sub.add_parser("ami", help="the daemon's AMI account on Asterisk")
    ami_sub = ami.add_subparsers(dest="ami_command", required=True, metavar="secret")
    secret = ami_sub.add_parser(
        "secret",
        parents=parents,
        help="check, make or render the daemon's AMI secret",
        description="Check the daemon's AMI secret ([ami] secret_file, default var/ami-secret; "
        "or [ami] secret): the daemon refuses to start with none, with one others may read, "
        "or, outside the lab, with the built-in one. With --create, make the file when missing "
        "(random, mode 0600). With --manager FILE, write Asterisk's manager.conf for the "
        "daemon's account (write classes call, reporting and originate only; 127.0.0.1 only; "
        "only the events the daemon uses, by an eventfilter; [ami] port and username) with "
        "that secret to FILE, mode 0600; then `manager reload` "
        "on Asterisk's CLI. The secret itself is never printed.",
    )
    secret.add_argument(
        "--create", action="store_true", help="make the secret file if it is missing"
    )
    secret.add_argument(
        "--manager", metavar="FILE", type=Path, help="write Asterisk's manager.conf to FILE"
    )
    secret.set_defaults(handler=ami_secret_command)


def render_manager(settings: Settings, secret: str) -> str:
    """This repository's manager.conf with the daemon's account filled in."""
    text = MANAGER_CONF.read_text()
    for key, value in (
        ("AMI_PORT", str(settings.ami.port)),
        ("AMI_USERNAME", settings.ami.username),
        ("AMI_SECRET", secret),
    ):
        text = text.replace(f"@@{key}@@", value)
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise CliError(f"{MANAGER_CONF}: unknown placeholder(s) {', '.join(sorted(left))}")
    return text


def ami_secret_command(args: argparse.Namespace, settings: Settings) -> int:
    path = settings.path(settings.ami.secret_file)
    existed = settings.ami.secret != "" or path.exists()
    try:
        secret = settings.ami_secret(create=args.create)
    except ConfigError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    result: dict[str, object] = {"created": not existed}
    if settings.ami.secret:
        result["source"] = "[ami] secret"
        text = "AMI secret from [ami] secret"
    else:
        mode = f"{stat.S_IMODE(path.stat().st_mode):04o}"
        result.update(source=str(path), mode=mode)
        text = f"AMI secret file {path}: " + ("created, " if not existed else "") + f"mode {mode}"
    if args.manager is not None:
        try:
            private_files.write_file(args.manager, render_manager(settings, secret))
        except OSError as e:
            raise CliError(f"cannot write {args.manager}: {e.strerror}", EXIT_FAILED) from None
        result["manager"] = str(args.manager)
        text += f"\nmanager.conf written to {args.manager} (mode 0600): put it in Asterisk's "
        text += "configuration folder, then `manager reload`"
    emit(args, result, text)
    return EXIT_OK
