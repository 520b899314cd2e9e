"""The recordings worker's totals as the benchmark reads them (a sample of what it writes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcontrol_lab.bench.worker_totals import (
    NOT_REPORTED,
    TOTALS_FILES,
    WorkerTotals,
    parse_totals,
    read_totals,
    recordings_figures,
)

SAMPLE = {
    "recordings_done": 310,
    "recorded_seconds": 9300.0,
    "cpu_seconds": 93.0,
    "backlog": 0,
    "backlog_peak": 41,
    "last_drained": "2026-12-05T10:00:30+00:00",
}


def test_reads_the_sample(tmp_path: Path) -> None:
    (tmp_path / TOTALS_FILES[0]).write_text(json.dumps(SAMPLE))
    totals = read_totals(tmp_path)
    drained = datetime(2026, 12, 5, 10, 0, 30, tzinfo=UTC).timestamp()
    assert totals == WorkerTotals(310, 9300.0, 93.0, 0, 41, drained)


def test_no_worker_no_figures(tmp_path: Path) -> None:
    assert read_totals(tmp_path) is None
    (tmp_path / TOTALS_FILES[0]).write_text("not json")
    assert read_totals(tmp_path) is None
    assert parse_totals({"backlog": 3}) is None
    figures = recordings_figures(None, None, 0.0)
    assert set(figures.values()) == {NOT_REPORTED}


def test_figures_of_a_run() -> None:
    before = WorkerTotals(10, 600.0, 6.0, 0, 2, 1000.0)
    after = parse_totals({**SAMPLE, "last_drained": 2040.0})
    assert after is not None
    f = recordings_figures(before, after, calls_ended_at=2000.0)
    assert f["recordings_done"] == 300 and f["recorded_minutes"] == 145.0
    assert f["cpu_s_per_recorded_minute"] == pytest.approx(87 / 145, abs=0.001)
    assert (f["backlog_peak"], f["backlog_left"], f["drain_s"]) == (41, 0, 40.0)
    # Not drained yet when the benchmark stopped waiting: no drain time.
    busy = WorkerTotals(300, 9300.0, 93.0, 5, 41, 1500.0)
    assert recordings_figures(before, busy, 2000.0)["drain_s"] is None
