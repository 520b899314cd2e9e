"""Who acts, what is written in the audit log about it, and the one check of rights the
services make themselves (the edges check first, with domain/roles.py; this is the guard
behind them, so that no edge can forget).

An Actor is a member of staff (console), the owner of an API token, or the person at the
command line: ``Actor(name, OPERATOR)`` when the CLI knows no token owner. Whoever runs the CLI
holds the database's password and could change any row by hand, so OPERATOR has every right;
it is written in the audit log as such, so that a reader knows it came from the shell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from callcontrol.domain.roles import Right, may
from callcontrol.services.errors import Refused

log = logging.getLogger("callcontrol.services")

OPERATOR = "operator"  # the command line, without an API token: the database's own user
SYSTEM = "system"  # the daemon itself


@dataclass(frozen=True)
class Actor:
    """Who acts: a name (staff username, token owner, login name) and a role."""

    name: str
    role: str


@dataclass(frozen=True)
class AuditNote:
    """One audit entry to write (adapters/db/audit.py's record() fields)."""

    actor: str
    role: str
    action: str
    target: str
    reason: str = ""
    detail: str = ""


def note(actor: Actor, action: str, target: str, reason: str = "", detail: str = "") -> AuditNote:
    return AuditNote(actor.name, actor.role, action, target, reason, detail)


def has_right(actor: Actor, right: Right) -> bool:
    return actor.role == OPERATOR or may(actor.role, right)


def require(actor: Actor, right: Right, act: str) -> None:
    """Refused (and logged) unless ``actor`` has ``right``."""
    if has_right(actor, right):
        return
    log.warning("REFUSED %s (%s) may not %s: %s right needed", actor.name, actor.role, act, right)
    if right is Right.ADMINISTER:
        raise Refused(
            f"only an admin may {act}: an officer may cut calls and work the contact queue, "
            "not let calls through again or change money or set-up"
        )
    raise Refused(f"{actor.role} {actor.name} may not {act}: an officer's or an admin's act")
