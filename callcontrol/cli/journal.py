"""Operator commands on the call journal (`journal rotate`, `journal status`).

The journal is the file Asterisk appends each allowed call's acceptance and end to
([asterisk] journal_file); the daemon reads it incrementally from a position kept in the
database and rotates it by itself ([asterisk] journal_rotate_bytes, journal_rotate_s).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from callcontrol.adapters.db.tables import JournalPositionRow
from callcontrol.adapters.journal_file import JournalFile
from callcontrol.cli import Parents, admin_session, command, group, table
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit
from callcontrol.config import Settings

Args = argparse.Namespace


def _journal(settings: Settings) -> JournalFile:
    from callcontrol.config import journal_path

    return JournalFile(journal_path(settings))


def journal_rotate(args: Args, settings: Settings) -> int:
    journal = _journal(settings)
    try:
        rotated = journal.rotate(datetime.now(UTC))
    except OSError as e:
        raise CliError(f"{e.strerror or e}: {e.filename or journal.path}", EXIT_FAILED) from None
    if rotated is None:
        emit(args, {"rotated": None}, f"{journal.path} is empty or missing: nothing to rotate")
    else:
        text = f"{journal.path} moved aside as {rotated}; the daemon reads what is left in it"
        emit(args, {"rotated": str(rotated)}, text)
    return EXIT_OK


async def journal_status(args: Args, settings: Settings) -> int:
    journal = _journal(settings)
    async with admin_session(settings) as s:
        position = await s.get(JournalPositionRow, 1)
    rows: list[dict[str, Any]] = []
    reached = False
    for path in [*journal.rotated(), journal.path]:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        here = position is not None and (st.st_dev, st.st_ino) == (position.device, position.inode)
        if here and position is not None:
            state, reached = f"reading: {position.offset} of {st.st_size} bytes read", True
        else:
            state = "not read yet" if reached or position is None else "read"
        rows.append({"file": str(path), "bytes": st.st_size, "state": state})
    emit(args, rows, table(rows, ("file", "bytes", "state"), f"no journal at {journal.path}"))
    return EXIT_OK


COMMANDS = (
    ("rotate", journal_rotate, "move the call journal aside now",
     "Move the call journal aside, as JOURNAL.<UTC time> next to it, and put an empty journal "
     "(same mode and owner) in its place in one step, while Asterisk keeps appending: a line "
     "Asterisk was writing as it moved lands in the moved file, which the daemon reads to its "
     "end before it goes on to the new one. The daemon does this by itself ([asterisk] "
     "journal_rotate_bytes, journal_rotate_s). Moved files that `journal status` shows as read "
     "may be archived or removed.", ()),
    ("status", journal_status, "which journal files the daemon has read",
     "List the journal and the files moved aside from it, oldest first, and how far the daemon "
     "has read them (its position, kept in the database).", ()),
)  # fmt: skip


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `journal` commands."""
    actions = group(
        sub, "journal", "the call journal: rotate, status",
        "The call journal: the file Asterisk appends each call's acceptance and end to, which "
        "the daemon reads to settle calls whose end it did not hear.",
    )  # fmt: skip
    for name, handler, help, description, arguments in COMMANDS:
        parser = command(actions, name, parents, handler, help, description)
        for flags, options in arguments:
            parser.add_argument(*flags, **options)
