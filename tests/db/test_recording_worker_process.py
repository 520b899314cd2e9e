"""`callcontrol recordings worker` as real processes on SQLite and PostgreSQL, with real audio in
the spool: two workers at once store every recording once between them; a worker killed in
the middle of a compression (SIGKILL) loses nothing, and the next one stores it once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select, update

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.tables import utcnow
from tests.db.test_recordings import add_call
from tests.protocol.daemon_proc import clean_env

BIN = Path(sys.executable).parent
FRAME = 4  # MixMonitor's raw: 16-bit stereo
RATE = 8000


class Site:
    def __init__(self, base: Path, db_url: str) -> None:
        self.base, self.db_url = base, db_url
        self.spool, self.store = base / "spool", base / "store"
        self.spool.mkdir()
        self.config = base / "callcontrol.toml"
        self.config.write_text(
            f'base_dir = "{base}"\n[database]\nurl = "{db_url}"\n'
            f'[recording]\nspool_dir = "{self.spool}"\nstore_dir = "{self.store}"\n'
        )

    def query(self, statement: object) -> list[object]:
        async def run() -> list[object]:
            engine = make_engine(self.db_url)
            try:
                async with session_factory(engine)() as s:
                    return list((await s.execute(statement)).all())  # type: ignore[call-overload]
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def settled_calls(self, seconds: list[float]) -> list[int]:
        """Ended, settled and accepted calls, each with ``seconds`` of audio in the spool."""

        async def run() -> list[int]:
            engine = make_engine(self.db_url)
            sessions = session_factory(engine)
            ids = []
            try:
                for length in seconds:
                    call_id = await add_call(sessions)
                    async with sessions.begin() as s:
                        call = await s.get(m.Call, call_id)
                        assert call is not None
                        # noise: it takes ffmpeg some work, unlike silence
                        data = os.urandom(int(length * RATE) * FRAME)
                        (self.spool / f"{call.uniqueid}.raw").write_bytes(data)
                        await s.execute(
                            update(m.Call)
                            .where(m.Call.id == call_id)
                            .values(settled_at=utcnow(), accepted=True, talk_seconds=int(length))
                        )
                    ids.append(call_id)
            finally:
                await engine.dispose()
            return ids

        return asyncio.run(run())

    def recordings(self) -> list[tuple[int, int]]:
        rows = self.query(select(m.Recording.call_id, m.Recording.duration_ms))
        return sorted((int(c), int(d)) for c, d in rows)  # type: ignore[misc]

    @contextmanager
    def worker(self, name: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
        log = open(self.base / f"{name}.log", "ab")  # noqa: SIM115 - the process writes it
        proc = subprocess.Popen(
            [str(BIN / "callcontrol"), "recordings", "worker", "--config", str(self.config),
             "--name", name, "--status-file", str(self.base / f"{name}.json"),
             "--poll-s", "0.2", *args],
            stdout=log, stderr=log, env=clean_env(),
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text()

    def figures(self, name: str) -> dict[str, object]:
        return json.loads((self.base / f"{name}.json").read_text())


def wait_for(what: str, check: object, within: float = 180.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f} s")
        time.sleep(0.05)


def verify(site: Site) -> None:
    proc = subprocess.run(
        [str(BIN / "callcontrol"), "recordings", "verify", "--config", str(site.config)],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_workers_store_every_recording_once(db_url: str, tmp_path: Path) -> None:
    site = Site(tmp_path, db_url)
    calls = site.settled_calls([4.0] * 8)
    with site.worker("w1"), site.worker("w2"):
        wait_for("every recording stored", lambda: len(site.recordings()) == len(calls))

        # Each call was worked on by one worker only: no compression thrown away.
        def handled() -> int:
            figures = [site.figures(n) for n in ("w1", "w2") if (tmp_path / f"{n}.json").exists()]
            if len(figures) < 2 or any(f["backlog"] != 0 for f in figures):
                return -1  # not yet: both must have seen the backlog drain
            return sum(int(f["recordings"]) + int(f["others"]) for f in figures)  # type: ignore[call-overload]

        wait_for("both workers' figures written", lambda: handled() == len(calls), within=30)
    assert [c for c, _ in site.recordings()] == calls
    assert all(abs(d - 4000) <= 20 for _, d in site.recordings())
    done = site.query(select(func.count()).where(m.RecordingClaim.done_at.is_not(None)))
    assert done == [(len(calls),)]
    assert list(site.spool.iterdir()) == []
    logs = site.log("w1") + site.log("w2")
    for call_id in calls:
        assert logs.count(f"call {call_id}: 4.0 s of audio compressed and stored") == 1
    for name in ("w1", "w2"):
        f = site.figures(name)
        assert f["backlog"] == 0 and f["failures"] == 0 and f["worker"] == name
        assert "recording worker at SCHED_IDLE priority" in site.log(name)
    verify(site)


def test_a_worker_killed_mid_compression_loses_nothing(db_url: str, tmp_path: Path) -> None:
    site = Site(tmp_path, db_url)
    [call_id] = site.settled_calls([300.0])  # five minutes: seconds of compression
    with site.worker("first", "--lease-s", "2") as first:
        wait_for(
            "the compression started",
            lambda: any(p.name.startswith(".ingest-") for p in site.store.glob(".ingest-*")),
            within=120,
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert site.recordings() == []
    [(worker, done)] = site.query(select(m.RecordingClaim.worker, m.RecordingClaim.done_at))
    assert (worker, done) == ("first", None)  # its claim still held: nobody else took it
    assert len(list(site.spool.glob("*.raw"))) == 1  # the audio still waits in the spool
    with site.worker("second", "--lease-s", "2"):
        wait_for("the recording stored after all", lambda: len(site.recordings()) == 1)
        wait_for("its figures written", lambda: site.figures("second")["recordings"] == 1, 30)
    [(stored, duration)] = site.recordings()
    assert stored == call_id and abs(duration - 300_000) <= 20
    [(worker, done)] = site.query(select(m.RecordingClaim.worker, m.RecordingClaim.done_at))
    assert worker == "second" and done is not None
    assert list(site.spool.iterdir()) == []
    verify(site)
