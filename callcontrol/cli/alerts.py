"""Staff's view of the PIN lockouts: `callcontrol alerts`, and `callcontrol cell unlock`.

A handset locked by wrong PINs is an alert: someone may be guessing a cellmate's PIN, and
while it lasts nobody in the cell can call. Staff see the alerts here (or GET /alerts on the
API) and end a lockout with `cell unlock`, audited with who and why.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from callcontrol.adapters.db import pin_store
from callcontrol.cli import Parents, admin_session, command, table, who
from callcontrol.cli.common import EXIT_OK, emit
from callcontrol.config import Settings

Args = argparse.Namespace
COLUMNS = ("started_at", "cell", "wing", "status", "until", "level", "failures", "unlocked_by")


def _plain(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat(timespec="seconds") if isinstance(v, datetime) else v
        for k, v in alert.items()
    }


async def alerts(args: Args, settings: Settings) -> int:
    now = datetime.now(UTC)
    async with admin_session(settings) as s:
        rows = [_plain(a) for a in await pin_store.alerts(s, now=now, days=args.days)]
    in_force = sum(1 for r in rows if r["status"] == "in force")
    text = table(rows, COLUMNS, f"no PIN lockouts in the last {args.days:g} days")
    if in_force:
        text += f"\n{in_force} handset(s) locked now; `callcontrol cell unlock CELL --reason R`"
    elif rows:
        text += "\nno handset locked now"
    emit(args, rows, text)
    return EXIT_OK


async def cell_unlock(args: Args, settings: Settings) -> int:
    now = datetime.now(UTC)
    async with admin_session(settings) as s:
        done = await pin_store.unlock_handset(
            s, args.cell, actor=who(args), role="operator", reason=args.reason, now=now
        )
    if done.locked_until is not None:
        text = (
            f"cell {done.cell} unlocked (it was locked until "
            f"{done.locked_until.isoformat(timespec='seconds')}); its wrong PINs so far forgotten"
        )
    else:
        text = f"cell {done.cell} was not locked; its wrong PINs so far forgotten"
    data = {"cell": done.cell, "was_locked": done.was_locked, "locked_until": done.locked_until}
    emit(args, _plain(data), text)
    return EXIT_OK


UNLOCK_HELP = (
    "End the PIN lockout of a cell's handset (see `callcontrol alerts`), and forget the wrong "
    "PINs keyed on it so far. The escalation of later lockouts stays until a successful call. "
    "Audited: who (--by, else your login) and why (--reason)."
)


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add `alerts` (`cell unlock` is in admin.py's table of cell commands)."""
    parser = command(
        sub,
        "alerts",
        parents,
        alerts,
        "show the PIN lockouts (alerts for staff)",
        "Show the handsets locked by wrong PINs: those locked now, and the lockouts of the last "
        "--days days, newest first. A lockout may mean someone is guessing a cellmate's PIN; "
        "while it lasts, nobody in the cell can call. `callcontrol cell unlock` ends one.",
    )
    parser.add_argument(
        "--days", type=float, default=7.0, metavar="N", help="how far back (default 7)"
    )
