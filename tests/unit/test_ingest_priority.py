"""Recordings are compressed one at a time, at a lower priority than the calls (and so are the
ffmpeg processes they start, which inherit the thread's niceness on Linux)."""

from __future__ import annotations

import os
import threading
import time

from callcontrol.services import recordings


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_compressions_run_in_one_thread_of_lower_priority() -> None:
    pool = recordings._compressor()
    assert pool is recordings._compressor()  # one pool for the daemon
    ours = _niceness()
    theirs = pool.submit(_niceness).result(timeout=10)
    assert theirs == min(19, ours + recordings.INGEST_NICENESS)
    # One at a time: two jobs of 0.2 s take 0.4 s.
    started = time.monotonic()
    jobs = [pool.submit(time.sleep, 0.2) for _ in range(2)]
    for job in jobs:
        job.result(timeout=10)
    assert time.monotonic() - started >= 0.39
    assert _niceness() == ours  # the calls' threads keep theirs
