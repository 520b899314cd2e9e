"""The recording worker's status file: written as its figures change, read back by the daemon
(/metrics, the console) and by the benchmark (lab's worker_totals), which agree on its format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcontrol.adapters.recording_status import StatusFile, WorkerStatus, read_status
from callcontrol.services.recording_worker import WorkerFigures
from callcontrol_lab.bench.worker_totals import parse_totals

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def test_written_when_changed_and_read_by_the_daemon_and_the_benchmark(tmp_path: Path) -> None:
    path = tmp_path / "var/recordings-worker.json"
    clock = [0.0]
    write = StatusFile(path, clock=lambda: clock[0])
    f = WorkerFigures("host:1", T0, T0)
    assert WorkerStatus(path).in_progress == 0 and read_status(path) is None  # none yet
    f.note_backlog(3, T0 + timedelta(seconds=1))
    f.recordings, f.recorded_s, f.cpu_s, f.failures = 2, 120.0, 0.6, 1
    write(f)
    status = WorkerStatus(path, max_age_s=0)
    assert (status.in_progress, status.failures) == (3, 1)
    f.note_backlog(0, T0 + timedelta(seconds=9))
    write(f)
    assert status.in_progress == 0
    f.process_cpu_s, f.updated_at = 5.0, T0 + timedelta(seconds=10)
    write(f)  # nothing new but the time: not rewritten
    assert read_status(path)["updated_at"] == "2027-03-01T12:00:09.000+00:00"  # type: ignore[index]
    clock[0] = 11.0
    write(f)  # still alive: rewritten every 10 s at least
    data = read_status(path)
    assert data is not None and data["updated_at"] == "2027-03-01T12:00:10.000+00:00"
    totals = parse_totals(data)
    assert totals is not None
    assert (totals.done, totals.recorded_s, totals.cpu_s) == (2, 120.0, 0.6)
    assert (totals.backlog, totals.backlog_peak) == (0, 3)
    assert totals.last_drained == (T0 + timedelta(seconds=9)).timestamp()
    assert path.stat().st_mode & 0o077 == 0
