"""The hash chain that makes the recording store tamper-evident (pure rules, no I/O).

Every event (a recording stored, a recording deleted) is one entry: its ``body`` is the event as
canonical JSON (keys sorted, no spaces, UTF-8), and its hash is
``sha256(prev_hash + "\\n" + body)`` in lowercase hex, where ``prev_hash`` is the hash of the
entry before it (``GENESIS``, 64 zeros, for the first). Changing, removing, inserting or
reordering any entry breaks every link after it, which ``verify_chain`` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

GENESIS = "0" * 64
KINDS = ("recording", "deletion")

# What a recording's chain entry holds: these fields of its row (and its kind).
RECORDING_FIELDS = (
    "call_id",
    "prisoner_id",
    "cell_id",
    "number",
    "started_at",
    "duration_ms",
    "channels",
    "codec",
    "sample_rate",
    "sha256",
    "bytes",
    "file_name",
    "ingested_at",
)
# What a deletion receipt holds.
# ``file``: what became of the file: deleted, altered (did not match; deleted), missing, or
# shared (the same audio is another recording's, still kept).
DELETION_FIELDS = ("recording_id", "call_id", "sha256", "when", "why", "by", "file")


class Entry(NamedTuple):
    """One entry of the chain as stored: its id (the order), the links and the body."""

    id: int
    prev_hash: str
    body: str
    entry_hash: str


def canonical(body: Mapping[str, Any]) -> str:
    """The one text of an event that is hashed: JSON, keys sorted, no spaces, UTF-8 as is."""
    return json.dumps(dict(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, body_text: str) -> str:
    """The hash of an entry: SHA-256 (hex) of the previous entry's hash, a newline, the body."""
    return hashlib.sha256(f"{prev_hash}\n{body_text}".encode()).hexdigest()


def parse(body_text: str) -> dict[str, Any] | None:
    """The event in a body, or None when it is not a JSON object."""
    try:
        value = json.loads(body_text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between two events (missing counts as different)."""
    keys = sorted(set(expected) | set(actual))
    return [k for k in keys if k not in expected or k not in actual or expected[k] != actual[k]]


def verify_chain(entries: Sequence[Entry | tuple[int, str, str, str]]) -> list[str]:
    """Every problem of a chain given in its order (by id); [] when it is whole.

    Each entry's hash must match its content, each must follow the one before it (the first
    the genesis), and no two may follow the same entry (a fork).
    """
    problems: list[str] = []
    by_hash: dict[str, int] = {}
    followed: dict[str, int] = {}
    for raw in entries:
        e = Entry(*raw)
        by_hash.setdefault(e.entry_hash, e.id)
    expected, previous = GENESIS, None
    for raw in entries:
        e = Entry(*raw)
        if entry_hash(e.prev_hash, e.body) != e.entry_hash:
            problems.append(f"entry {e.id}: hash does not match its content")
        elif parse(e.body) is None:
            problems.append(f"entry {e.id}: its content is not a JSON object")
        if e.prev_hash in followed:
            problems.append(
                f"entry {e.id}: forks the chain (entry {followed[e.prev_hash]} follows the same "
                "entry)"
            )
        followed.setdefault(e.prev_hash, e.id)
        if e.prev_hash != expected:
            if previous is None:
                problems.append(
                    f"entry {e.id}: does not start from the genesis: entries before it are missing"
                )
            elif e.prev_hash == GENESIS or e.prev_hash in by_hash:
                origin = (
                    "the genesis" if e.prev_hash == GENESIS else f"entry {by_hash[e.prev_hash]}"
                )
                problems.append(
                    f"entry {e.id}: does not follow entry {previous} but {origin}: reordered"
                )
            else:
                problems.append(
                    f"entry {e.id}: does not follow entry {previous}: an entry between them is "
                    "missing"
                )
        expected, previous = e.entry_hash, e.id
    return problems


def head_problems(entries: Sequence[Entry], count: int, last_hash: str) -> list[str]:
    """The chain against its recorded head (how many entries, the last hash): catches entries
    removed from the end, which the links alone cannot show."""
    problems = []
    actual_last = entries[-1].entry_hash if entries else GENESIS
    if len(entries) != count:
        problems.append(f"chain head: {count} entries recorded, {len(entries)} found")
    if actual_last != last_hash:
        problems.append("chain head: the last entry is not the one recorded: entries are missing")
    return problems


# --- the recordings against the chain ----------------------------------------------------------


class Stored(NamedTuple):
    """A chain entry with what it is about: its kind and the recording it names."""

    id: int
    kind: str
    recording_id: int
    prev_hash: str
    body: str
    entry_hash: str


class Row(NamedTuple):
    """A recording's row as the chain sees it."""

    id: int
    call_id: int
    event: dict[str, Any]  # what its chain entry must say (RECORDING_FIELDS and its kind)
    prev_hash: str
    entry_hash: str
    sha256: str
    purged_at: str | None  # ISO 8601, as a deletion receipt's "when"


def check_records(entries: Sequence[Stored], rows: Sequence[Row]) -> list[str]:
    """Every disagreement between the recordings and the chain: a row changed since its entry
    was written, a row or an entry without the other, a purge without its receipt (or the other
    way round). The chain's own links are verify_chain's."""
    problems: list[str] = []
    events = {e.id: parse(e.body) or {} for e in entries}
    by_hash = {e.entry_hash: e for e in entries}
    by_id = {r.id: r for r in rows}
    receipts: dict[int, list[Stored]] = {}
    for e in entries:
        if events[e.id].get("kind") != e.kind:
            problems.append(f"entry {e.id}: its kind ({e.kind}) differs from its content")
        if e.kind == "deletion":
            if events[e.id].get("recording_id") != e.recording_id:
                problems.append(f"entry {e.id}: names another recording than its content")
            receipts.setdefault(e.recording_id, []).append(e)
        row = by_id.get(e.recording_id)
        if row is None:
            problems.append(f"entry {e.id}: recording {e.recording_id} is not in the table")
        elif e.kind == "recording" and row.entry_hash != e.entry_hash:
            problems.append(f"entry {e.id}: recording {row.id} names another chain entry")
    for row in rows:
        entry = by_hash.get(row.entry_hash)
        problems += _check_row(row, entry, receipts.get(row.id, []), events)
    return problems


def _check_row(
    r: Row, entry: Stored | None, receipts: list[Stored], events: dict[int, dict[str, Any]]
) -> list[str]:
    label = f"recording {r.id} (call {r.call_id})"
    if entry is None or entry.kind != "recording" or entry.recording_id != r.id:
        return [f"{label}: not in the chain (no entry has its hash)"]
    problems = []
    fields = differences(events[entry.id], r.event)
    if entry.prev_hash != r.prev_hash:
        fields.append("prev_entry_hash")
    if fields:
        problems.append(f"{label}: row differs from its chain entry: {', '.join(fields)}")
    if r.purged_at is None and receipts:
        problems.append(f"{label}: deleted by chain entry {receipts[0].id} but not marked purged")
    elif r.purged_at is not None and not receipts:
        problems.append(f"{label}: marked purged but the chain has no deletion receipt for it")
    elif receipts:
        receipt = events[receipts[0].id]
        wrong = [k for k, v in (("sha256", r.sha256), ("when", r.purged_at)) if receipt.get(k) != v]
        if wrong:
            problems.append(
                f"{label}: row differs from its deletion receipt (entry {receipts[0].id}): "
                + ", ".join("purged_at" if k == "when" else k for k in wrong)
            )
    return problems
