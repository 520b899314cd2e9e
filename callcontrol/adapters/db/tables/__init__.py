"""The database tables (SQLAlchemy 2), one module per concern, all on one ``Base``. The
migrations (data/migrations) create exactly these.

base.py holds what they share (Base, UtcDateTime, BigId, utcnow); core.py the prison's tables;
billing.py the money; recordings.py the recordings, their chain and the audit log; pins.py the
PIN lockouts; journal.py the call journal as read. Each imports only base.py; this package
imports them all, so that ``Base.metadata`` (Alembic's env.py, the schema test, the daemon)
always holds every table. Import the tables from here: ``from callcontrol.adapters.db import
tables as t`` or ``from callcontrol.adapters.db.tables import Cell``.
"""

from __future__ import annotations

from callcontrol.adapters.db.tables.base import (
    NAMING,
    Base,
    BigId,
    UtcDateTime,
    utcnow,
)
from callcontrol.adapters.db.tables.billing import (
    ENTRY_KINDS,
    RESERVATION_STATUSES,
    Account,
    LedgerEntry,
    Reservation,
    TariffRow,
)
from callcontrol.adapters.db.tables.core import (
    Call,
    CallDecision,
    Cell,
    CellsVersion,
    Contact,
    ContactChange,
    GlobalNumber,
    GlobalsVersion,
    PinFailure,
    Prisoner,
)
from callcontrol.adapters.db.tables.journal import (
    JournalCall,
    JournalPositionRow,
)
from callcontrol.adapters.db.tables.pins import (
    HandsetPinState,
    PinLockout,
)
from callcontrol.adapters.db.tables.recordings import (
    HASH,
    AuditEntry,
    ChainCheckpoint,
    ChainEntry,
    ChainHead,
    MissingRecording,
    Recording,
    iso,
)

__all__ = [
    "NAMING",
    "BigId",
    "UtcDateTime",
    "utcnow",
    "Base",
    "Cell",
    "CellsVersion",
    "Prisoner",
    "Contact",
    "ContactChange",
    "GlobalNumber",
    "GlobalsVersion",
    "PinFailure",
    "CallDecision",
    "Call",
    "ENTRY_KINDS",
    "RESERVATION_STATUSES",
    "Account",
    "LedgerEntry",
    "Reservation",
    "TariffRow",
    "JournalCall",
    "JournalPositionRow",
    "HandsetPinState",
    "PinLockout",
    "HASH",
    "iso",
    "Recording",
    "ChainEntry",
    "ChainHead",
    "MissingRecording",
    "AuditEntry",
    "ChainCheckpoint",
]
