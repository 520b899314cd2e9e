"""The recording worker (services/recording_worker.py) with a fake queue, fake spool sizes and a
fake clock: it finds what an earlier run left and what is settled since, works one recording
at a time, leaves one another worker holds, gives back one that failed, and keeps its figures
(CPU per recorded minute, the backlog's peak and when it drained)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcontrol.services.recording_jobs import (
    Claim,
    RecordingFinder,
    SettledCall,
    SpoolWatch,
)
from callcontrol.services.recording_worker import RecordingWorker, WorkerFigures

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def call(n: int, accepted: bool = True) -> SettledCall:
    return SettledCall(n, f"u{n}", False, accepted, T0 + timedelta(seconds=n))


class FakeQueue:
    def __init__(self) -> None:
        self.settled: list[SettledCall] = []
        self.leftovers: list[SettledCall] = []
        self.by_uniqueid: dict[str, SettledCall | bool] = {}
        self.claims: dict[int, tuple[str, datetime, datetime | None]] = {}  # worker, lease, done
        self.given_back: list[int] = []
        self.since: list[datetime] = []

    async def latest_settled(self) -> datetime | None:
        return max((c.settled_at for c in self.settled), default=None)

    async def settled_since(self, since: datetime) -> Sequence[SettledCall]:
        self.since.append(since)
        done = {c for c, (_, _, d) in self.claims.items() if d is not None}
        return [c for c in self.settled if c.settled_at >= since and c.call_id not in done]

    async def left_over(self) -> Sequence[SettledCall]:
        return self.leftovers

    async def settled_call(self, uniqueid: str) -> SettledCall | None | bool:
        return self.by_uniqueid.get(uniqueid)

    async def claim(self, call_id: int, worker: str, now: datetime, lease_s: float) -> Claim:
        held = self.claims.get(call_id)
        if held is not None and held[2] is not None:
            return Claim.DONE
        if held is not None and held[1] > now:
            return Claim.BUSY
        self.claims[call_id] = (worker, now + timedelta(seconds=lease_s), None)
        return Claim.CLAIMED

    async def renew(self, call_id: int, worker: str, now: datetime, lease_s: float) -> bool:
        return True

    async def finish(self, call_id: int, worker: str, now: datetime) -> None:
        self.claims[call_id] = (worker, now, now)

    async def give_back(self, call_id: int, worker: str, retry_at: datetime) -> None:
        self.given_back.append(call_id)
        self.claims[call_id] = ("", retry_at, None)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.spool = tmp_path
        self.sizes: dict[str, int] = {}
        self.now = 0.0  # monotonic
        self.cpu_used = 0.0
        self.queue = FakeQueue()
        self.ingested: list[int] = []
        self.fail: set[int] = set()
        self.published: list[dict[str, object]] = []
        watch = SpoolWatch(tmp_path, lambda p: self.sizes.get(p.name, 0), grace_s=1, wait_s=20)
        self.worker = RecordingWorker(
            RecordingFinder(self.queue, watch),
            self.queue,
            self.ingest,
            "w1",
            clock=lambda: T0 + timedelta(seconds=self.now),
            cpu=lambda: self.cpu_used,
            publish=lambda f: self.published.append(f.as_json()),
            monotonic=lambda: self.now,
            lease_s=60,
            retry_s=30,
        )

    async def ingest(self, c: SettledCall) -> float | None:
        if c.call_id in self.fail:
            raise OSError("disk full")
        self.cpu_used += 1.5  # what compressing it took
        self.ingested.append(c.call_id)
        self.sizes.pop(f"{c.uniqueid}.raw", None)
        return 30.0  # seconds of audio

    async def at(self, t: float) -> None:
        self.now = t
        await self.worker.step()


async def test_leftovers_then_new_calls_each_once_with_its_cpu(tmp_path: Path) -> None:
    w = World(tmp_path)
    q = w.queue
    q.settled = [call(1), call(2)]
    q.leftovers = [call(1)]  # accepted, settled, no recording: an earlier run's
    for name in ("u1.raw", "u2.raw", "u9.raw", "stray.raw"):
        (tmp_path / name).write_bytes(b"\0" * 8)
        w.sizes[name] = 8
    q.by_uniqueid = {"u2": call(2), "u9": True}  # u9: its call is not settled; stray: no call
    await w.at(0)
    assert w.ingested == []  # in the grace
    await w.at(1)
    assert w.ingested == [1, 2]
    assert q.since[-1] == call(2).settled_at - timedelta(seconds=60)  # polled from the latest
    q.settled.append(call(3))
    w.sizes["u3.raw"] = 8
    await w.at(2)
    assert w.ingested == [1, 2]  # in its grace
    await w.at(3)
    assert w.ingested == [1, 2, 3]
    await w.at(4)
    assert w.ingested == [1, 2, 3]  # done: never again, though the poll's overlap sees it
    f = w.worker.figures
    assert (f.recordings, f.recorded_s, f.cpu_s) == (3, 90.0, 4.5)
    assert f.as_json()["cpu_s_per_recorded_min"] == 3.0


async def test_the_backlog_its_peak_and_when_it_drained(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.queue.settled = [call(1), call(2), call(3)]
    for n in (1, 2, 3):
        w.sizes[f"u{n}.raw"] = 8
    await w.at(0)
    f = w.worker.figures
    assert (f.backlog, f.backlog_peak, f.backlog_since) == (3, 3, T0)
    await w.at(5)  # all three compressed, one at a time
    assert f.backlog == 0 and f.backlog_peak == 3
    assert f.drained_at == T0 + timedelta(seconds=5) and f.last_drain_s == 5.0
    assert w.published[-1]["backlog"] == 0 and w.published[-1]["backlog_peak"] == 3


async def test_one_another_worker_holds_is_left_and_looked_at_again(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.queue.settled = [call(1), call(2)]
    w.sizes["u1.raw"] = w.sizes["u2.raw"] = 8
    w.queue.claims[1] = ("w2", T0 + timedelta(seconds=40), None)  # w2 works on it
    w.queue.claims[2] = ("w2", T0, T0)  # w2 finished it
    await w.at(0)
    await w.at(1)
    assert w.ingested == []
    assert 2 not in w.worker.watch  # done by w2: dropped
    await w.at(60)
    assert w.ingested == []  # w2's lease still ran
    await w.at(61)
    assert w.ingested == [1]  # w2 died: taken over


async def test_a_failed_ingest_is_given_back_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(tmp_path)
    w.queue.settled = [call(1)]
    w.sizes["u1.raw"] = 8
    w.fail.add(1)
    await w.at(0)
    await w.at(1)
    assert w.queue.given_back == [1] and w.worker.figures.failures == 1
    assert "it stays in the spool and is tried again in 30 s" in caplog.text
    w.fail.clear()
    await w.at(30)
    assert w.ingested == []
    await w.at(31)
    assert w.ingested == [1]


async def test_stop_finishes_the_recording_in_hand(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.queue.settled = [call(1), call(2)]
    w.sizes["u1.raw"] = w.sizes["u2.raw"] = 8
    stop = asyncio.Event()
    started = asyncio.Event()

    async def slow(c: SettledCall) -> float | None:
        started.set()
        stop.set()  # SIGTERM while it compresses
        await asyncio.sleep(0.05)
        w.ingested.append(c.call_id)
        return 1.0

    w.worker.ingest = slow
    w.worker.watch.grace_s = w.worker.watch.steady_s = 0  # ready as soon as seen
    await asyncio.wait_for(w.worker.run(stop), 10)
    assert started.is_set() and w.ingested == [1]  # finished; the next one left for later
    assert w.queue.claims[1][2] is not None and 2 not in w.queue.claims


def test_figures_as_json() -> None:
    f = WorkerFigures("w", T0, T0)
    assert f.as_json()["cpu_s_per_recorded_min"] is None  # nothing recorded yet
    f.note_backlog(2, T0 + timedelta(seconds=1))
    f.note_backlog(0, T0 + timedelta(seconds=4))
    data = f.as_json()
    assert data["backlog_peak"] == 2 and data["last_drain_s"] == 3.0
    assert data["drained_at"] == "2027-03-01T12:00:04.000+00:00"


async def test_a_database_away_is_logged_once_and_looked_at_less_often(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(tmp_path)
    looks = 0

    async def away() -> None:
        nonlocal looks
        looks += 1
        raise OSError("connection refused")

    w.queue.latest_settled = away  # type: ignore[assignment,method-assign]
    w.worker.poll_s = 0.01
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.6, stop.set)
    await asyncio.wait_for(w.worker.run(stop), 10)
    # waits of 0.02, 0.04, 0.08, 0.16, 0.32 s: not 60 looks at 0.01 s
    assert 1 <= looks <= 7, looks
    assert caplog.text.count("could not look for work") == 1
