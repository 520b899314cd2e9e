"""The recording tables: recordings, their hash chain, missing recordings, the audit log.

A recording's audio is a file in the store named by its SHA-256 (services/recordings.py); its
row here says what it is. Every recording stored and every recording deleted is also an entry of
``recording_chain``, a hash chain (domain/chain.py) whose last link is kept in the one row of
``recording_chain_head`` (which writers lock, so that the chain cannot fork). Migration 0003 adds
triggers: the database refuses any UPDATE or DELETE of ``recording_chain`` and ``audit_log``, a
DELETE of ``recordings`` or of the chain head, and any UPDATE of ``recordings`` but the one that
marks it purged. ``verify`` catches what gets past them (a file altered, a trigger dropped).

These tables are on the same ``Base`` as core.py (tables/base.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcontrol.adapters.db.tables.base import Base, BigId, UtcDateTime, utcnow
from callcontrol.domain.chain import GENESIS, KINDS, RECORDING_FIELDS, Row, Stored

HASH = String(64)


def iso(value: datetime | None) -> str | None:
    """A time as it is written in the chain: ISO 8601, UTC, to the microsecond."""
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


class Recording(Base):
    """One call's recording: Ogg Opus in the store, ``file_name`` (= sha256 + ".ogg")."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"), index=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("cells.id"))
    number: Mapped[str] = mapped_column(String(32))
    # When the called party accepted the call (when the conversation began), UTC.
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String(16))
    sample_rate: Mapped[int] = mapped_column(Integer)  # of the audio recorded (8000 for G.711)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(HASH)  # of the stored file; kept after a purge
    file_name: Mapped[str] = mapped_column(String(80))
    ingested_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    prev_entry_hash: Mapped[str] = mapped_column(HASH)
    entry_hash: Mapped[str] = mapped_column(HASH, unique=True)  # its entry in recording_chain
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    __table_args__ = (
        CheckConstraint("channels >= 1", name="channels_positive"),
        CheckConstraint("duration_ms >= 0", name="duration_not_negative"),
        CheckConstraint("bytes > 0", name="bytes_positive"),
    )

    def event(self) -> dict[str, Any]:
        """What its chain entry says about it (domain/chain.py RECORDING_FIELDS)."""
        values = {f: getattr(self, f) for f in RECORDING_FIELDS}
        values["started_at"] = iso(self.started_at)
        values["ingested_at"] = iso(self.ingested_at)
        return {"kind": "recording", **values}

    def row(self) -> Row:
        """The row as verify sees it (domain/chain.py check_records)."""
        return Row(
            self.id, self.call_id, self.event(), self.prev_entry_hash, self.entry_hash,
            self.sha256, iso(self.purged_at),
        )  # fmt: skip


class ChainEntry(Base):
    """One event of the recording chain; never changed or removed once written."""

    __tablename__ = "recording_chain"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # recording | deletion
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    body: Mapped[str] = mapped_column(Text)  # canonical JSON of the event
    # Unique: two entries following the same one would be a fork.
    prev_hash: Mapped[str] = mapped_column(HASH, unique=True)
    entry_hash: Mapped[str] = mapped_column(HASH, unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="kind"),
    )

    def stored(self) -> Stored:
        return Stored(
            self.id, self.kind, self.recording_id, self.prev_hash, self.body, self.entry_hash
        )


class ChainHead(Base):
    """The one row (id 1) saying how long the chain is and its last hash. Appending to the
    chain first locks it (an UPDATE), so appends happen one at a time on every backend."""

    __tablename__ = "recording_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    entry_hash: Mapped[str] = mapped_column(HASH, default=GENESIS)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class MissingRecording(Base):
    """A call that should have a recording but has none (no file, an empty or broken one)."""

    __tablename__ = "missing_recordings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    why: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # ingested after all


class RecordingClaim(Base):
    """A recording worker's claim on a call's recording (migration 0013): who compresses it, until
    when the claim holds unless renewed (a worker that dies loses it then, and another takes the
    call over), and when it was done. One row per call, so that two workers, on this machine or
    another, never work on the same recording: claiming is an INSERT that finds no row, or an
    UPDATE of a row whose lease ran out and that is not done (adapters/db/recording_queue.py)."""

    __tablename__ = "recording_claims"
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(128))  # "" while nobody holds it (a retry waits)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Who did what to which recording, call, cell or prisoner, when and why. Append-only."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")


class ChainCheckpoint(Base):
    """A signed checkpoint of the chain's head, as also appended to the checkpoints file.

    A copy for convenience (``recordings verify`` reads these too): the database's owner can
    delete rows here but not forge one, since the key is not in the database. The file shipped
    off the host is the copy that counts."""

    __tablename__ = "recording_chain_checkpoints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entries: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(HASH)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))
