"""Which cell places which call, with which PIN and number, and when. Pure.

Every cell holds one prisoner, and a prisoner can have one call at a time (the daemon refuses a
second as call_in_progress), so the plan gives each call a cell that is free by then, with a
margin. Cells are in three pools, named by prefix, so that a cell keeps its role between runs:

* ``PREFIX-0001`` ...: funded prisoners (approved, unapproved, privileged, busy, noanswer calls);
* ``PREFIX-S001`` ...: prisoners with 2p of credit (short-credit calls);
* ``PREFIX-W001`` ...: prisoners who are only ever keyed wrong PINs (three wrong PINs count
  towards their handset's lockout, which would refuse their next good call). A W cell takes one
  call a run (a second would lock its handset: pin_locked, not wrong_pin); provisioning
  unlocks them before each run.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from callcontrol_lab.simulator.load.mix import EXPECTED, Kind
from callcontrol_lab.simulator.logs import HandsetCall, keyed, keying_ms

MAIN, SHORT, WRONG = "main", "short", "wrong_pin"
POOL_OF: dict[Kind, str] = {Kind.SHORT_CREDIT: SHORT, Kind.WRONG_PIN: WRONG}

# The numbers, national format (region GB). The called party's by_number mode reads the
# hundreds digit: 8 busy, 9 noanswer, else it answers and accepts. Ofcom's drama ranges.
NUMBERS: dict[str, str] = {
    "social": "02079460100",
    "busy": "02079460800",
    "noanswer": "02079460900",
    "legal": "02079460200",
    "mobile": "07911123100",
    "unlisted": "02079460500",
}
NUMBER_OF: dict[Kind, str] = {
    Kind.APPROVED: NUMBERS["social"],
    Kind.PRIVILEGED: NUMBERS["legal"],
    Kind.BUSY: NUMBERS["busy"],
    Kind.NOANSWER: NUMBERS["noanswer"],
    Kind.UNAPPROVED: NUMBERS["unlisted"],
    Kind.SHORT_CREDIT: NUMBERS["mobile"],
    Kind.WRONG_PIN: NUMBERS["social"],
}


@dataclass(frozen=True)
class Timing:
    """The handsets' and the called party's timing (seconds unless said)."""

    hold_s: float = 10.0  # talk after the acceptance, for the calls that connect
    first_pin_s: float = 1.5
    retry_s: float = 3.0
    dtmf_ms: int = 200
    accept_after_s: float = 1.5  # the called party keys its accept digit this long after answering
    refusal_s: float = 3.0  # the refusal prompt, and the daemon's "wrong PIN" between tries
    margin_s: float = 6.0  # between one call's end and the next on the same cell

    @property
    def accept_keying_s(self) -> float:
        # One digit: 400 ms of filler, tone, gap and one more tone length, plus a margin.
        return (400 + 3 * self.dtmf_ms + 60) / 1000

    def handset_hold_ms(self, kind: Kind) -> int:
        """From the last PIN keyed to the handset's BYE."""
        if kind in (Kind.APPROVED, Kind.PRIVILEGED, Kind.BUSY, Kind.NOANSWER):
            return round((self.hold_s + self.accept_after_s + self.accept_keying_s) * 1000)
        return round((self.refusal_s + 30.0) * 1000)  # refused: Asterisk hangs up first

    def occupancy_s(self, kind: Kind, pin_digits: int) -> float:
        """How long a call keeps its cell busy, at most (conservative)."""
        keying = keying_ms([keyed("0" * pin_digits)], self.dtmf_ms) / 1000
        tries = 3 if kind is Kind.WRONG_PIN else 1
        pins = self.first_pin_s + tries * keying + (tries - 1) * self.retry_s
        if kind in (Kind.APPROVED, Kind.PRIVILEGED, Kind.BUSY, Kind.NOANSWER):
            talk = self.hold_s + self.accept_after_s + self.accept_keying_s
        else:
            talk = self.refusal_s
        return pins + talk + self.margin_s


@dataclass(frozen=True)
class LoadCell:
    name: str
    pool: str
    prison_number: str
    pin: str


@dataclass(frozen=True)
class PlannedCall:
    index: int  # 0-based; SIPp's call number is index + 1
    kind: Kind
    cell: LoadCell
    number: str
    start_s: float  # when SIPp should start it, from the start of the run
    pins: tuple[str, ...]
    hold_ms: int
    talk_ms: int = 0  # the talk planned after the acceptance (Timing.hold_s), 0 if none

    def handset_call(self, password: str, timing: Timing) -> HandsetCall:
        return HandsetCall(
            cell=self.cell.name,
            password=password,
            number=self.number,
            pins=self.pins,
            pin_tries=len(self.pins),
            first_pin_ms=round(timing.first_pin_s * 1000),
            dtmf_ms=timing.dtmf_ms,
            retry_ms=round(timing.retry_s * 1000),
            hold_ms=self.hold_ms,
        )


@dataclass
class LoadPlan:
    calls: list[PlannedCall]
    cells: list[LoadCell]
    rate: float
    timing: Timing
    needed: dict[str, int] = field(default_factory=dict)

    def cells_in(self, pool: str) -> list[LoadCell]:
        return [c for c in self.cells if c.pool == pool]


class PlanError(ValueError):
    """The load cannot be planned as asked; the message says what to change."""


def pin_for(index: int, digits: int) -> str:
    """A PIN for cell number ``index`` (1-based) with no digit repeated next to itself (SIPp can
    drop one of two identical digits keyed in a row)."""
    n = (index * 7919 + 1357) % (10**digits)
    out: list[str] = []
    for ch in f"{n:0{digits}d}":
        d = int(ch)
        if out and int(out[-1]) == d:
            d = (d + 1) % 10
        out.append(str(d))
    return "".join(out)


def wrong_pin(pin: str) -> str:
    """A wrong PIN for ``pin``: every digit differs, none repeated next to itself."""
    out: list[str] = []
    for ch in pin:
        d = (int(ch) + 5) % 10
        if out and int(out[-1]) == d:
            d = (d + 1) % 10
        if d == int(ch):
            d = (d + 1) % 10
        out.append(str(d))
    return "".join(out)


def cell_name(prefix: str, pool: str, n: int) -> str:
    return {MAIN: f"{prefix}-{n:04d}", SHORT: f"{prefix}-S{n:03d}", WRONG: f"{prefix}-W{n:03d}"}[
        pool
    ]


def prison_number(prefix: str, pool: str, n: int) -> str:
    # A digit per pool (the prefix is letters only), so no two prefixes share a number.
    tag = {MAIN: "0", SHORT: "1", WRONG: "2"}[pool]
    return f"{prefix}{tag}{n:04d}"


def make_cells(prefix: str, counts: dict[str, int], pin_digits: int) -> list[LoadCell]:
    cells = []
    offset = {MAIN: 0, SHORT: 5000, WRONG: 7000}
    for pool in (MAIN, SHORT, WRONG):
        for n in range(1, counts.get(pool, 0) + 1):
            cells.append(
                LoadCell(
                    name=cell_name(prefix, pool, n),
                    pool=pool,
                    prison_number=prison_number(prefix, pool, n),
                    pin=pin_for(offset[pool] + n, pin_digits),
                )
            )
    return cells


def _free_again(pool: str, t: float, occupancy_s: float) -> float:
    """When a cell whose call starts at ``t`` may take another: never for a wrong-PIN cell
    (its next three wrong PINs would lock its handset)."""
    return math.inf if pool == WRONG else t + occupancy_s


def cells_needed(
    kinds: Sequence[Kind], rate: float, timing: Timing, pin_digits: int
) -> dict[str, int]:
    """How many cells each pool needs so that no cell has two calls at once."""
    free: dict[str, list[float]] = {MAIN: [], SHORT: [], WRONG: []}
    for i, kind in enumerate(kinds):
        pool = POOL_OF.get(kind, MAIN)
        t = i / rate
        heap = free[pool]
        if heap and heap[0] <= t:
            heapq.heapreplace(heap, _free_again(pool, t, timing.occupancy_s(kind, pin_digits)))
        else:
            heapq.heappush(heap, _free_again(pool, t, timing.occupancy_s(kind, pin_digits)))
    return {pool: len(heap) for pool, heap in free.items()}


def plan_load(
    kinds: Sequence[Kind],
    *,
    cells: int,
    rate: float,
    timing: Timing,
    prefix: str = "LOAD",
    pin_digits: int = 4,
) -> LoadPlan:
    """The plan: ``cells`` cells in all (the spare ones in the main pool), each call on the cell
    of its pool that has been free longest."""
    if not rate > 0 or not math.isfinite(rate):
        raise PlanError(f"the rate must be more than 0 calls per second, not {rate}")
    if cells < 1:
        raise PlanError("at least one cell is needed")
    if timing.hold_s < 0:
        raise PlanError("the hold cannot be negative")
    need = cells_needed(kinds, rate, timing, pin_digits)
    total = sum(need.values())
    if total > cells:
        detail = ", ".join(f"{n} {pool}" for pool, n in need.items() if n)
        longest = max(timing.occupancy_s(k, pin_digits) for k in set(kinds))
        raise PlanError(
            f"{cells} cells are too few: at {rate:g} calls/s with a {timing.hold_s:g} s hold a "
            f"cell is busy for up to {longest:.0f} s a call, and a prisoner can only have one "
            f"call at a time, so this load needs at least {total} cells ({detail}). Give "
            f"--cells {total} or more, or lower --rate or --hold."
        )
    counts = dict(need)
    counts[MAIN] = need[MAIN] + (cells - total)
    all_cells = make_cells(prefix, counts, pin_digits)
    pools: dict[str, list[tuple[float, int, LoadCell]]] = {MAIN: [], SHORT: [], WRONG: []}
    for order, c in enumerate(all_cells):
        pools[c.pool].append((-math.inf, order, c))
    for heap in pools.values():
        heapq.heapify(heap)
    calls: list[PlannedCall] = []
    for i, kind in enumerate(kinds):
        t = i / rate
        free_at, order, cell = heapq.heappop(pools[POOL_OF.get(kind, MAIN)])
        assert free_at <= t + 1e-9, "cells_needed() and the assignment disagree"
        free_again = _free_again(cell.pool, t, timing.occupancy_s(kind, pin_digits))
        heapq.heappush(pools[cell.pool], (free_again, order, cell))
        if kind is Kind.WRONG_PIN:
            pins = (wrong_pin(cell.pin),) * 3
        else:
            pins = (cell.pin,)
        calls.append(
            PlannedCall(
                index=i,
                kind=kind,
                cell=cell,
                number=NUMBER_OF[kind],
                start_s=t,
                pins=pins,
                hold_ms=timing.handset_hold_ms(kind),
                talk_ms=round(timing.hold_s * 1000) if EXPECTED[kind].bridged else 0,
            )
        )
    return LoadPlan(calls=calls, cells=all_cells, rate=rate, timing=timing, needed=need)
