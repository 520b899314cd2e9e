"""Bounded lists for the API's read routes, and the services' views as JSON.

Every list the API answers is one page: ``limit`` (default 100, at most 1000) items from
``offset`` (default 0), with ``total`` (how many there are) and ``next_offset`` (the offset of
the next page, null on the last). Times are ISO 8601 (the edge's JSON encoder), money integer
pence with names ending in ``_pence``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from callcontrol.adapters.http import params

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 10**9
PAGING = ("limit", "offset")

T = TypeVar("T")


def page(
    given: Mapping[str, str], key: str, items: Sequence[T], render: Callable[[T], Any]
) -> dict[str, Any]:
    """One page of ``items`` as {key: [...], "total": N, "next_offset": M or null}."""
    limit = params.whole(given, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = params.whole(given, "offset", 0, 0, MAX_OFFSET)
    end = offset + limit
    return {
        key: [render(item) for item in items[offset:end]],
        "total": len(items),
        "next_offset": end if end < len(items) else None,
    }


# --- the services' views (services/views.py) as JSON -------------------------------------------


def plain(view: Any) -> dict[str, Any]:
    """A view's fields as they are (nested views as objects)."""
    return asdict(view)


def cell(view: Any, now: datetime) -> dict[str, Any]:
    data = asdict(view)
    data["prisoners"] = list(view.prisoners)
    data["locked"] = view.locked(now)
    return data


def money(view: Any) -> dict[str, int]:
    return {
        "balance_pence": view.balance,
        "reserved_pence": view.reserved,
        "available_pence": view.available,
    }


def prisoner_detail(detail: Any) -> dict[str, Any]:
    return {
        **asdict(detail.prisoner),
        "money": money(detail.money),
        "limits": asdict(detail.limits),
    }


def statement_line(line: Any) -> dict[str, Any]:
    """A ledger entry (with its call, for a call's charge) or a connected call that cost nothing
    (kind "free_call", no amount)."""
    entry = line.entry
    return {
        "at": line.at,
        "kind": entry.kind if entry is not None else "free_call",
        "entry_id": entry.id if entry is not None else None,
        "amount_pence": entry.amount_pence if entry is not None else 0,
        "balance_after_pence": line.balance_after,
        "reference": entry.reference if entry is not None else "",
        "created_by": entry.created_by if entry is not None else "",
        "call_id": line.call_id,
        "number": line.number,
        "started_at": line.started_at,
        "talk_seconds": line.talk_seconds,
        "charge_pence": line.charge_pence,
    }
