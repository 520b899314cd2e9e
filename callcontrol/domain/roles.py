"""Who may do what: the roles of staff (console accounts) and of API tokens, and their rights.

One table for every edge (the console, the JSON API, the CLI's checks), so that a right is
granted or refused in the same way wherever the act is asked for.

- officer: watches, cuts and listens to live calls, works the queue of pending contacts
  (approve, block), takes a phone out of service (disable a cell, suspend a prisoner, unlock a
  locked-out cell), searches call history and plays recordings.
- admin: everything an officer may, and what lets calls through again or changes money and
  set-up (enable a cell, reinstate a prisoner, credit, tariffs, cells, prisoners, staff), and
  reads the audit log.
- auditor: reads everything staff can read (calls, recordings, the audit log, alerts, prisoners,
  cells) and never changes anything, never listens to a live call.
"""

from __future__ import annotations

from enum import StrEnum

OFFICER = "officer"
ADMIN = "admin"
AUDITOR = "auditor"
ROLES = (OFFICER, ADMIN, AUDITOR)


class Right(StrEnum):
    READ = "read"  # prisoners, cells, contacts, call history, alerts, statements
    RECORDINGS = "recordings"  # search, play and download recordings (each play audited)
    AUDIT = "audit"  # read the audit log
    SUPERVISE = "supervise"  # cut, listen, approve/block contacts, disable, suspend, unlock
    ADMINISTER = "administer"  # enable, reinstate, credit, tariffs, cells, prisoners, staff


RIGHTS: dict[str, frozenset[Right]] = {
    OFFICER: frozenset({Right.READ, Right.RECORDINGS, Right.SUPERVISE}),
    ADMIN: frozenset(Right),
    AUDITOR: frozenset({Right.READ, Right.RECORDINGS, Right.AUDIT}),
}


def may(role: str, right: Right) -> bool:
    """Has ``role`` the ``right``? An unknown role has none."""
    return right in RIGHTS.get(role, frozenset())


def changes(right: Right) -> bool:
    """Does exercising ``right`` change anything (so never an auditor's)?"""
    return right in (Right.SUPERVISE, Right.ADMINISTER)
