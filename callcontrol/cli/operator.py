"""What the operator's commands share: the services on the settings' database, and who acts.

Every act of the command line goes through the same services as the console's and the API's
(callcontrol/operator_services.py), audited under the actor: the login name (or ``--by
NAME``) with the role ``operator`` (whoever runs the CLI holds the database's password); for
the supervisory acts, the person whose API token is given or configured, as the API does.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.db.tables import utcnow
from callcontrol.cli import database, who
from callcontrol.cli import supervise as supervise_cli
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, CliError, emit, fail
from callcontrol.config import Settings
from callcontrol.operator_services import OperatorServices, operator_services
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol.services.errors import AsteriskUnavailable
from callcontrol.services.supervise import Supervisor, Sweep


def actor(args: argparse.Namespace, settings: Settings, by_token: bool = False) -> Actor:
    """Who acts: --by, else the login name, with the role OPERATOR (the database's own user).

    ``by_token`` (the supervisory acts: disable, enable, suspend, reinstate, as in the API):
    the person whose API token is given or configured, with their role, when the tokens file
    names them; so an officer's token does not let calls through again from here either (a
    guard against slips, not a boundary: the database's password is). A token given on
    purpose (--token, --token-file) must be readable; one only configured ([http] token_file)
    that this account cannot read is ignored."""
    owner = None
    if by_token:
        explicit = getattr(args, "token", None) or getattr(args, "token_file", None)
        try:
            token = supervise_cli.api_token(args, settings)
        except CliError:
            if explicit:
                raise
            token = ""
        owner = supervise_cli.token_owner(settings, token) if token else None
    name = getattr(args, "by", None) or (owner.name if owner else who(args))
    return Actor(str(name), owner.role if owner else OPERATOR)


@asynccontextmanager
async def services(
    settings: Settings,
) -> AsyncIterator[tuple[OperatorServices, async_sessionmaker[AsyncSession]]]:
    """The operator's services (and their sessions) on the settings' database; a refusal is
    exit status 2, nothing written (each act is one transaction)."""
    async with database(settings) as sessions:
        yield operator_services(settings, sessions), sessions


# --- disabling a cell, suspending a prisoner: the Supervisor, without AMI -----------------


class NoAsterisk:
    """The command line's CallControl: it has no AMI session, so the Supervisor it runs
    disables and suspends (the same act as the API's) and reports the live calls it could not
    cut; the running daemon is then asked to cut them (cut_live_calls)."""

    connected = False

    async def hangup(self, channel: str, cause: int = 16) -> Any:
        raise AsteriskUnavailable("the command line has no AMI session")

    async def originate(self, channel: str, **kwargs: Any) -> Any:
        raise AsteriskUnavailable("the command line has no AMI session")


def supervisor(services: OperatorServices, sessions: Any) -> Supervisor:
    return Supervisor(
        SqlSuperviseStore(sessions), NoAsterisk(), SqlAuditLog(sessions), clock=utcnow,
        cells=services.cells, prisoners=services.prisoners,
    )  # fmt: skip


async def cut_live_calls(
    args: argparse.Namespace,
    settings: Settings,
    data: dict[str, Any],
    text: str,
    path: str,
    reason: str,
    sweep: Sweep,
) -> int:
    """After the change: the daemon refuses new calls; ask it to cut those already up.

    The daemon (with its AMI) cuts them when a token is given and it answers. Otherwise the
    calls the database still has open are listed as not cut, and the exit status is 1: the
    phone is off, but a call may still be going on (cut it with `callcontrol calls cut`)."""
    token = supervise_cli.api_token(args, settings)
    if token:
        live = await supervise_cli.cut_live_calls(settings, path, reason, token)
    else:
        live = {"daemon": "not asked", "failed": False, "note": supervise_cli.NO_TOKEN}
    if live["daemon"] != "reached" and sweep.not_cut:
        calls = ", ".join(str(i) for i, _ in sweep.not_cut)
        live["calls_not_cut"] = [{"call_id": i, "error": why} for i, why in sweep.not_cut]
        live["note"] += (
            f"; {len(sweep.not_cut)} call(s) still open in the database NOT cut ({calls}): "
            "cut them with `callcontrol calls cut` through the running daemon"
        )
        live["failed"] = True
    emit(args, data | {"live_calls": live}, f"{text}\n{live['note']}")
    return fail(live["note"], EXIT_FAILED) if live["failed"] else EXIT_OK
