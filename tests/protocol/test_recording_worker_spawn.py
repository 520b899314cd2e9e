"""The daemon (`callcontrol run`, a real process) runs the recording worker as its child by
default: at idle priority, on the daemon's settings, started again if it dies, stopped with
the daemon, and gone by itself if the daemon is killed; with [recording] worker = "external"
the daemon starts none."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from .daemon_proc import free_port, prepare_database, running_daemon, write_config


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def gone(pid: int, within: float = 30.0) -> bool:
    for _ in range(int(within / 0.1)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_the_daemon_runs_restarts_and_stops_its_worker(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    await prepare_database(tmp_path)
    async with running_daemon(config) as daemon:
        first = int((await daemon.wait_for_line(r"recording worker started \(pid (\d+)\)"))[1])
        assert first in children(daemon.proc.pid)
        status = tmp_path / "var/recordings-worker.json"  # the default, under the base_dir
        for _ in range(300):
            if status.exists():
                break
            await asyncio.sleep(0.1)
        figures = json.loads(status.read_text())  # written once at idle priority
        assert os.sched_getscheduler(first) == os.SCHED_IDLE
        assert figures["backlog"] == 0 and figures["recordings"] == 0
        os.kill(first, signal.SIGKILL)
        await daemon.wait_for_line(r"recording worker \(pid \d+\) ended with status -9")
        again = await daemon.wait_for_line(rf"recording worker started \(pid (?!{first}\))(\d+)")
        second = int(again[1])
        assert second in children(daemon.proc.pid) and alive(second)
        daemon.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.proc.wait(), 30) == 0
        assert not alive(second)  # stopped (and waited for) by the daemon


async def test_a_killed_daemons_worker_stops_by_itself(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    await prepare_database(tmp_path)
    async with running_daemon(config) as daemon:
        worker = int((await daemon.wait_for_line(r"recording worker started \(pid (\d+)\)"))[1])
        daemon.proc.kill()
        await daemon.proc.wait()
        assert await gone(worker), "the worker outlived the daemon that started it"


async def test_external_no_worker_started(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    await prepare_database(tmp_path)
    env = {"CALLCONTROL_RECORDING_WORKER": "external"}
    async with running_daemon(config, env) as daemon:
        await daemon.wait_for_line(r"supervision API listening")
        await asyncio.sleep(1.0)  # time enough for a worker to have been started
        assert children(daemon.proc.pid) == []
        assert not any("recording worker" in line for line in daemon.lines)
