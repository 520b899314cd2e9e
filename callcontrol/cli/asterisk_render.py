"""`callcontrol asterisk render --to DIR`: Asterisk's whole configuration for an existing
Asterisk 20/22, from the packaged templates and the settings (adapters/asterisk/render.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from callcontrol.adapters.asterisk import render as rendering
from callcontrol.adapters.asterisk.pjsip_cells import CELLS_CONF
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, emit
from callcontrol.config import Settings, journal_path, recordings_spool

DESCRIPTION = """\
Write everything Asterisk needs into DIR, with the values of the settings file:

  asterisk.conf      Asterisk's folders ([asterisk] astetcdir, astmoddir, astrundir,
                     astspooldir, astlogdir, astdbdir; Debian's by default)
  modules.conf       only the modules callcontrol uses (autoload = no)
  pjsip.conf         the SIP transport ([asterisk] pjsip_host, pjsip_port), the pstn trunk
                     (pstn_host, pstn_port), the officers' desk, the cells' templates
  pjsip_cells.conf   one endpoint per enabled cell, from the database (as `asterisk sync`)
  manager.conf       AMI on 127.0.0.1 for the daemon's user ([ami] username, port) with its
                     secret: [ami] secret_file, made random (0600) when missing, else reused;
                     an eventfilter lets through only the events the daemon uses
  extensions.conf    the globals: the daemon's FastAGI URL ([agi] host, port) with the
  dialplan/          secret of [agi] secret_file (made when missing), the journal, the spool;
                     dialplan/cells.conf the cells' dialplan
  sounds/            callcontrol's prompts (extensions.conf plays them from astetcdir/sounds)
  rtp.conf, ...      the rest of the set callcontrol is tested with

DIR becomes Asterisk's configuration folder, [asterisk] astetcdir (/etc/asterisk): render
into it, or into an empty folder and copy from there. Files hold secrets: written 0640
(manager.conf 0600) for the user that runs this; give them to Asterisk's user
(chown -R asterisk: DIR) when that is another. Not made here: the journal file
([asterisk] journal_file; it must exist, writable by Asterisk and readable by the daemon)
and the spool folder ([recording] spool_dir). Nothing is printed of the secrets.
"""


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "render",
        parents=parents,
        help="write Asterisk's configuration (PJSIP, AMI, dialplan, sounds) into a folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--to", metavar="DIR", type=Path, required=True, help="the folder to write")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into DIR although it holds files: ours are replaced, others left as they are",
    )
    p.add_argument(
        "--no-cells",
        action="store_true",
        help="no database: write an empty pjsip_cells.conf (unless there is one); fill it "
        "later with `callcontrol asterisk sync`",
    )
    p.set_defaults(handler=asterisk_render)


def asterisk_render(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from callcontrol.cli.ops import cells_file  # late: ops registers this command

    to: Path = args.to
    if to.exists() and not to.is_dir():
        raise CliError(f"{to} is not a folder", EXIT_USAGE)
    if to.is_dir() and any(to.iterdir()) and not args.force:
        raise CliError(
            f"{to} is not empty: render into an empty folder, or give --force to replace "
            "callcontrol's files there (others are left as they are)",
            EXIT_USAGE,
        )
    try:
        files = rendering.files(rendering.values(settings))
    except rendering.RenderError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    cells = 0
    if not args.no_cells:
        text, cells = asyncio.run(cells_file(settings))
        files.append(rendering.Rendered(CELLS_CONF, text.encode(), rendering.PRIVATE_FILE))
    elif not (to / CELLS_CONF).exists():
        empty = b"; no cells yet: run `callcontrol asterisk sync`\n"
        files.append(rendering.Rendered(CELLS_CONF, empty, rendering.PRIVATE_FILE))
    try:
        written = rendering.write(to, files)
    except OSError as e:
        raise CliError(f"could not write into {to}: {e}", EXIT_FAILED) from None
    names = [str(p.relative_to(to)) for p in written]
    where = settings.asterisk.astetcdir
    emit(
        args,
        {"dir": str(to), "files": names, "cells": None if args.no_cells else cells},
        f"wrote {len(names)} file(s) into {to}: {', '.join(names)}\n"
        f"  Asterisk reads them from {where} (asterisk -C {where}/asterisk.conf); "
        + ("no cells written" if args.no_cells else f"{cells} enabled cell(s)")
        + f"\n  the journal {journal_path(settings)} must exist (Asterisk writes it), and the "
        f"spool {recordings_spool(settings)}",
    )
    return EXIT_OK
