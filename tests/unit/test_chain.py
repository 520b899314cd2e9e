"""The hash chain's rules (domain/chain.py): canonical bodies, links, and what verify reports."""

from __future__ import annotations

import hashlib

from callcontrol.domain.chain import (
    GENESIS,
    Entry,
    Row,
    Stored,
    canonical,
    check_records,
    differences,
    entry_hash,
    head_problems,
    parse,
    verify_chain,
)


def build(*bodies: dict[str, object], first_id: int = 1) -> list[Entry]:
    entries, prev = [], GENESIS
    for i, body in enumerate(bodies, start=first_id):
        text = canonical(body)
        link = entry_hash(prev, text)
        entries.append(Entry(i, prev, text, link))
        prev = link
    return entries


def test_canonical_is_sorted_compact_and_utf8() -> None:
    assert canonical({"b": 1, "a": "é", "c": [1, 2]}) == '{"a":"é","b":1,"c":[1,2]}'
    assert canonical({"x": 1, "y": 2}) == canonical({"y": 2, "x": 1})


def test_entry_hash_is_sha256_of_prev_newline_body() -> None:
    body = canonical({"a": 1})
    expected = hashlib.sha256(f"{GENESIS}\n{body}".encode()).hexdigest()
    assert entry_hash(GENESIS, body) == expected
    assert len(GENESIS) == 64 and set(GENESIS) == {"0"}
    assert entry_hash("1" * 64, body) != expected


def test_a_whole_chain_verifies() -> None:
    assert verify_chain([]) == []
    assert verify_chain(build({"n": 1}, {"n": 2}, {"n": 3})) == []


def test_ids_may_have_gaps() -> None:
    a, b, c = build({"n": 1}, {"n": 2}, {"n": 3})
    assert verify_chain([a._replace(id=1), b._replace(id=5), c._replace(id=9)]) == []


def test_altered_content_is_named() -> None:
    entries = build({"n": 1}, {"n": 2}, {"n": 3})
    entries[1] = entries[1]._replace(body=canonical({"n": 20}))
    assert verify_chain(entries) == ["entry 2: hash does not match its content"]


def test_rehashed_entry_breaks_the_next_link() -> None:
    entries = build({"n": 1}, {"n": 2}, {"n": 3})
    body = canonical({"n": 20})
    entries[1] = entries[1]._replace(body=body, entry_hash=entry_hash(entries[1].prev_hash, body))
    assert verify_chain(entries) == [
        "entry 3: does not follow entry 2: an entry between them is missing"
    ]


def test_missing_entry_is_named() -> None:
    entries = build({"n": 1}, {"n": 2}, {"n": 3}, {"n": 4})
    del entries[2]
    assert verify_chain(entries) == [
        "entry 4: does not follow entry 2: an entry between them is missing"
    ]


def test_missing_first_entry() -> None:
    entries = build({"n": 1}, {"n": 2})
    assert verify_chain(entries[1:]) == [
        "entry 2: does not start from the genesis: entries before it are missing"
    ]


def test_reordered_entries_are_named() -> None:
    a, b, c = build({"n": 1}, {"n": 2}, {"n": 3})
    swapped = [a, c._replace(id=2), b._replace(id=3)]
    problems = verify_chain(swapped)
    assert "entry 2: does not follow entry 1 but entry 3: reordered" in problems
    assert "entry 3: does not follow entry 2 but entry 1: reordered" in problems


def test_fork_is_named() -> None:
    a, b = build({"n": 1}, {"n": 2})
    other = canonical({"n": 3})
    fork = Entry(3, a.entry_hash, other, entry_hash(a.entry_hash, other))
    problems = verify_chain([a, b, fork])
    assert problems[0] == "entry 3: forks the chain (entry 2 follows the same entry)"


def test_body_not_json_is_named() -> None:
    text = "not json"
    entry = Entry(1, GENESIS, text, entry_hash(GENESIS, text))
    assert verify_chain([entry]) == ["entry 1: its content is not a JSON object"]
    assert parse(text) is None and parse("[1]") is None and parse('{"a":1}') == {"a": 1}


def test_plain_tuples_are_accepted() -> None:
    entries = [tuple(e) for e in build({"n": 1}, {"n": 2})]
    assert verify_chain(entries) == []  # type: ignore[arg-type]


def test_head_catches_entries_cut_from_the_end() -> None:
    entries = build({"n": 1}, {"n": 2}, {"n": 3})
    assert head_problems(entries, 3, entries[-1].entry_hash) == []
    assert head_problems([], 0, GENESIS) == []
    problems = head_problems(entries[:2], 3, entries[-1].entry_hash)
    assert problems == [
        "chain head: 3 entries recorded, 2 found",
        "chain head: the last entry is not the one recorded: entries are missing",
    ]


def test_differences() -> None:
    assert differences({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    assert differences({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == ["b", "c"]


def _recording(rid: int, call_id: int, prev: str, **event: object) -> tuple[Stored, Row]:
    body = {"kind": "recording", "call_id": call_id, "duration_ms": 1000, **event}
    text = canonical(body)
    link = entry_hash(prev, text)
    return (
        Stored(rid, "recording", rid, prev, text, link),
        Row(rid, call_id, body, prev, link, "ab" * 32, None),
    )


def test_records_agree_with_the_chain() -> None:
    e1, r1 = _recording(1, 10, GENESIS)
    e2, r2 = _recording(2, 11, e1.entry_hash)
    assert check_records([e1, e2], [r1, r2]) == []


def test_a_changed_row_is_named_with_its_fields() -> None:
    e1, r1 = _recording(1, 10, GENESIS)
    changed = r1._replace(event=r1.event | {"duration_ms": 5})
    assert check_records([e1], [changed]) == [
        "recording 1 (call 10): row differs from its chain entry: duration_ms"
    ]


def test_rows_and_entries_without_each_other() -> None:
    e1, r1 = _recording(1, 10, GENESIS)
    assert check_records([e1], []) == ["entry 1: recording 1 is not in the table"]
    assert check_records([], [r1]) == [
        "recording 1 (call 10): not in the chain (no entry has its hash)"
    ]


def test_purge_needs_its_receipt() -> None:
    e1, r1 = _recording(1, 10, GENESIS)
    when = "2027-03-01T00:00:00.000000+00:00"
    receipt = canonical({"kind": "deletion", "recording_id": 1, "sha256": r1.sha256, "when": when})
    e2 = Stored(2, "deletion", 1, e1.entry_hash, receipt, entry_hash(e1.entry_hash, receipt))
    purged = r1._replace(purged_at=when)
    assert check_records([e1, e2], [purged]) == []
    assert check_records([e1], [purged]) == [
        "recording 1 (call 10): marked purged but the chain has no deletion receipt for it"
    ]
    assert check_records([e1, e2], [r1]) == [
        "recording 1 (call 10): deleted by chain entry 2 but not marked purged"
    ]
    assert check_records([e1, e2], [purged._replace(purged_at="2027-01-01")]) == [
        "recording 1 (call 10): row differs from its deletion receipt (entry 2): purged_at"
    ]
