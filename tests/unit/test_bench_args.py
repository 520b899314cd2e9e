"""make bench's and the micro-benchmark's options: defaults that measure every target, and
arguments refused with a message."""

from __future__ import annotations

import pytest

from callcontrol_lab.bench import run
from callcontrol_lab.bench.history import HistorySpec, spec_from
from callcontrol_lab.bench.micro import parser as micro_parser


def test_make_bench_defaults_measure_every_target() -> None:
    args = run.parser().parse_args([])
    assert args.history is True and spec_from(args) == HistorySpec()
    assert (args.history_prisoners, args.history_rows) == (10_000, 5_000_000)
    assert args.concurrent >= 250 and args.capacity_modes == ["static", "daemon"]
    assert args.latency_rate == 20.0 and args.modes == ["static", "daemon", "pyst2"]
    assert args.micro_calls > 0


def test_make_bench_options() -> None:
    args = run.parser().parse_args(
        ["--no-history", "--capacity-modes", "daemon", "--history-rows", "20_000",
         "--drain-timeout-s", "30", "--rates", "5,2"]
    )  # fmt: skip
    assert args.history is False and args.capacity_modes == ["daemon"]
    assert args.history_rows == 20_000 and args.drain_timeout_s == 30.0
    assert args.rates == [2.0, 5.0]


@pytest.mark.parametrize(
    "argv",
    [
        ["--capacity-modes", "asterisk"],
        ["--history-prisoners", "0"],
        ["--history-rows", "many"],
        ["--rates", "0,5"],
        ["--history-prisoners", "10", "--history-rows", "50"],  # too few rows a prisoner
    ],
)
def test_make_bench_refuses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run.main([*argv, "--out", "/nonexistent/never-made"])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_micro_history_options() -> None:
    args = micro_parser().parse_args([])
    assert args.history is False
    args = micro_parser().parse_args(
        ["--history", "--history-prisoners", "100", "--history-rows", "20000"]
    )
    assert spec_from(args) == HistorySpec(100, 20_000, 60)
