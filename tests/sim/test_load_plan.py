"""The load runner's pure parts: the mix and the plan (cells, PINs, numbers, timing)."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from callcontrol_lab.simulator.load import mix, plan
from callcontrol_lab.simulator.load.mix import Kind
from callcontrol_lab.simulator.load.runner import rate_options
from callcontrol_lab.simulator.logs import injection_text


def test_parse_mix_reads_weights_and_leaves_the_rest_at_zero() -> None:
    got = mix.parse_mix("approved = 80\nbusy = 20.5\n")
    assert got[Kind.APPROVED] == 80 and got[Kind.BUSY] == 20.5
    assert got[Kind.WRONG_PIN] == 0


def test_parse_mix_takes_a_mix_table_too() -> None:
    assert mix.parse_mix("[mix]\nprivileged = 1\n")[Kind.PRIVILEGED] == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("approvd = 1", "unknown kind of call 'approvd'"),
        ("approved = -1", "must be 0 or more"),
        ("approved = 'lots'", "must be a number"),
        ("approved = true", "must be a number"),
        ("approved = 0", "every weight is 0"),
        ("approved = ", "not valid TOML"),
    ],
)
def test_parse_mix_refuses_bad_files_saying_why(text: str, says: str) -> None:
    with pytest.raises(mix.MixError, match=says):
        mix.parse_mix(text, "mix.toml")


def test_sequence_gives_exact_proportions_spread_out_and_the_same_every_time() -> None:
    weights = {k: 0.0 for k in Kind} | {Kind.APPROVED: 70.0, Kind.BUSY: 30.0}
    seq = mix.sequence(weights, 10)
    assert Counter(seq) == {Kind.APPROVED: 7, Kind.BUSY: 3}
    assert seq == mix.sequence(weights, 10)
    busy_at = [i for i, k in enumerate(seq) if k is Kind.BUSY]
    assert all(b - a >= 2 for a, b in zip(busy_at, busy_at[1:], strict=False))


def test_default_mix_has_every_kind() -> None:
    assert Counter(mix.sequence(mix.DEFAULT_MIX, 100)).keys() == set(Kind)


def test_every_kind_has_an_expectation_and_a_number() -> None:
    assert set(mix.EXPECTED) == set(Kind) == set(plan.NUMBER_OF)


def test_pins_never_repeat_a_digit_in_a_row_and_wrong_pins_differ_everywhere() -> None:
    for i in range(1, 3000):
        pin = plan.pin_for(i, 4)
        assert len(pin) == 4 and pin.isdigit()
        assert all(a != b for a, b in zip(pin, pin[1:], strict=False)), pin
        bad = plan.wrong_pin(pin)
        assert all(a != b for a, b in zip(pin, bad, strict=True)), (pin, bad)
        assert all(a != b for a, b in zip(bad, bad[1:], strict=False)), bad


def _plan(calls: int = 200, rate: float = 5.0, cells: int = 400, **kw: object) -> plan.LoadPlan:
    kinds = mix.sequence(mix.DEFAULT_MIX, calls)
    return plan.plan_load(kinds, cells=cells, rate=rate, timing=plan.Timing(hold_s=10), **kw)


def test_no_cell_has_two_calls_at_once() -> None:
    p = _plan()
    by_cell: dict[str, list[plan.PlannedCall]] = defaultdict(list)
    for c in p.calls:
        by_cell[c.cell.name].append(c)
    for calls in by_cell.values():
        for a, b in zip(calls, calls[1:], strict=False):
            assert b.start_s >= a.start_s + p.timing.occupancy_s(a.kind, 4) - 1e-9


def test_a_wrong_pin_cell_takes_one_call_a_run() -> None:
    """Its handset would be locked by a second call's wrong PINs (pin_locked, not wrong_pin)."""
    p = _plan(calls=400, rate=5)
    wrong = [c.cell.name for c in p.calls if c.kind is Kind.WRONG_PIN]
    assert len(wrong) == 16 and len(set(wrong)) == len(wrong)
    assert p.needed[plan.WRONG] == len(wrong)


def test_calls_start_at_the_rate_and_use_their_pool() -> None:
    p = _plan(calls=50, rate=2.5)
    assert [c.start_s for c in p.calls[:3]] == [0.0, 0.4, 0.8]
    for c in p.calls:
        want = plan.POOL_OF.get(c.kind, plan.MAIN)
        assert c.cell.pool == want
        assert c.number == plan.NUMBER_OF[c.kind]
        if c.kind is Kind.WRONG_PIN:
            assert c.cell.name.startswith("LOAD-W")
            assert len(c.pins) == 3 and c.cell.pin not in c.pins
        else:
            assert c.pins == (c.cell.pin,)
    assert len(p.cells) == 400


def test_too_few_cells_is_refused_with_the_number_needed() -> None:
    needed = sum(
        plan.cells_needed(mix.sequence(mix.DEFAULT_MIX, 200), 5.0, plan.Timing(10), 4).values()
    )
    with pytest.raises(plan.PlanError, match=f"at least {needed} cells"):
        _plan(cells=needed - 1)
    assert len(_plan(cells=needed).cells) == needed


@pytest.mark.parametrize("rate", [0, -1, float("inf")])
def test_bad_rates_are_refused(rate: float) -> None:
    with pytest.raises(plan.PlanError):
        _plan(rate=rate)


def test_cell_names_are_stable_per_pool() -> None:
    p = _plan(calls=100, prefix="ZED")
    names = {c.name for c in p.cells}
    assert "ZED-0001" in names and "ZED-S001" in names and "ZED-W001" in names
    again = _plan(calls=100, prefix="ZED")
    assert [(c.name, c.pin) for c in again.cells] == [(c.name, c.pin) for c in p.cells]


def test_the_injection_file_carries_each_planned_call() -> None:
    p = _plan(calls=20)
    text = injection_text(c.handset_call("pw" + c.cell.name[-2:], p.timing) for c in p.calls)
    lines = text.splitlines()
    assert lines[0] == "SEQUENTIAL" and len(lines) == 21
    wrong = next(c for c in p.calls if c.kind is Kind.WRONG_PIN)
    fields = lines[wrong.index + 1].split(";")
    assert fields[0] == wrong.cell.name and fields[2] == wrong.number
    assert fields[3:7] == [*(pin + "#" for pin in wrong.pins), "3"]  # "#" ends each entry


def test_connected_calls_hold_past_the_acceptance_and_refused_ones_wait_for_asterisk() -> None:
    t = plan.Timing(hold_s=10)
    assert t.handset_hold_ms(Kind.APPROVED) == 10000 + 1500 + 1060
    assert t.handset_hold_ms(Kind.UNAPPROVED) > 30000


@pytest.mark.parametrize(
    ("rate", "opts"),
    [
        (3, ["-r", "3", "-rp", "1000"]),
        (2.5, ["-r", "5", "-rp", "2000"]),
        (0.1, ["-r", "1", "-rp", "10000"]),
    ],
)
def test_rate_becomes_sipp_options(rate: float, opts: list[str]) -> None:
    assert rate_options(rate) == opts
