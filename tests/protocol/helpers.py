"""Shared test helpers: polling, a loop-freeze watchdog and a ticker measuring loop stalls."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.01)


class LoopFrozen(Exception):
    """Raised by the watchdog inside whatever code is hogging the event loop."""


@contextlib.contextmanager
def loop_watchdog(seconds: float) -> Iterator[None]:
    """Break a frozen event loop: a busy-spinning coroutine never yields, so only a signal can.

    The SIGALRM handler raises LoopFrozen in the spinning code, the loop runs again and the test
    fails on its own assertions instead of hanging the whole run.
    """

    def _alarm(signum: int, frame: object) -> None:
        raise LoopFrozen(f"event loop frozen for {seconds}s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Ticker:
    """A coroutine ticking every 10 ms, recording the longest gap between ticks."""

    def __init__(self) -> None:
        self.ticks = 0
        self.max_gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            now = loop.time()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.ticks += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
