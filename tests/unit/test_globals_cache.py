"""The cache of the global numbers and tariffs without a database: when it reloads, what it
serves while the database is away, and when it refuses (adapters/db/globals_cache.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from callcontrol.adapters.db.globals_cache import CachedGlobals, Globals, GlobalsStale, is_stale
from callcontrol.domain.model import GlobalNumber, GlobalPolicy
from callcontrol.domain.tariffs import Tariff
from tests.protocol.helpers import eventually


def test_is_stale() -> None:
    assert is_stale(None, 0.0, 5.0)  # never checked
    assert not is_stale(100.0, 100.0, 5.0)
    assert not is_stale(100.0, 105.0, 5.0)  # exactly the bound: still served
    assert is_stale(100.0, 105.001, 5.0)


class FakeReader:
    """The database: a version and the values; ``down`` makes every read fail."""

    def __init__(self) -> None:
        self.version_now = 1
        self.rate = 310
        self.down = False
        self.reads: list[str] = []

    async def version(self) -> int:
        self.reads.append("version")
        if self.down:
            raise ConnectionError("database away")
        return self.version_now

    async def read(self) -> Globals:
        self.reads.append("read")
        if self.down:
            raise ConnectionError("database away")
        number = GlobalNumber("116123", GlobalPolicy.ALLOWED, privileged=True)
        tariff = Tariff("other", self.rate)
        return Globals(self.version_now, {"116123": number}, {"other": tariff})

    def change(self, rate: int) -> None:
        self.rate, self.version_now = rate, self.version_now + 1


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_first_load_on_demand_then_served_from_memory() -> None:
    reader = FakeReader()
    cache = CachedGlobals(reader, clock=Clock())
    assert cache.version is None
    assert (await cache.tariffs())["other"].rate == 310
    for _ in range(10):
        await cache.tariffs()
        assert "116123" in await cache.global_numbers()
    assert reader.reads == ["read"]


async def test_check_reloads_only_when_the_version_moved() -> None:
    reader = FakeReader()
    cache = CachedGlobals(reader, clock=Clock())
    assert await cache.check() is True
    assert await cache.check() is False
    reader.change(400)
    assert (await cache.tariffs())["other"].rate == 310  # not until a check
    assert await cache.check() is True
    assert (await cache.tariffs())["other"].rate == 400
    assert reader.reads == ["read", "version", "version", "read"]


async def test_a_version_that_goes_back_reloads_too() -> None:
    """A database restored from a backup: any other version is another state."""
    reader = FakeReader()
    reader.version_now = 9
    cache = CachedGlobals(reader, clock=Clock())
    await cache.check()
    reader.version_now, reader.rate = 3, 123
    assert await cache.check() is True
    assert (await cache.tariffs())["other"].rate == 123


async def test_database_away_served_up_to_the_bound_then_refused() -> None:
    reader, clock = FakeReader(), Clock()
    cache = CachedGlobals(reader, max_age_s=5.0, clock=clock)
    await cache.check()
    reader.down = True
    clock.now += 2
    with pytest.raises(ConnectionError):
        await cache.check()  # a failed check confirms nothing
    clock.now += 3
    assert (await cache.tariffs())["other"].rate == 310
    clock.now += 0.5
    with pytest.raises(GlobalsStale):
        await cache.tariffs()
    with pytest.raises(GlobalsStale):
        await cache.global_numbers()
    reader.down = False
    await cache.check()
    assert (await cache.tariffs())["other"].rate == 310


async def test_first_load_failing_refuses() -> None:
    reader = FakeReader()
    reader.down = True
    cache = CachedGlobals(reader, clock=Clock())
    with pytest.raises(ConnectionError):
        await cache.global_numbers()
    assert cache.version is None


class FakeNotifications:
    def __init__(self) -> None:
        self.wake: Callable[[], None] | None = None

    async def listen(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        await asyncio.Event().wait()


async def test_run_checks_at_once_when_notified() -> None:
    """Polling an hour apart: a notification alone brings the change in."""
    reader, notifications = FakeReader(), FakeNotifications()
    cache = CachedGlobals(reader, notifications, poll_s=3600, max_age_s=3600)
    task = asyncio.create_task(cache.run())
    try:
        await eventually(lambda: cache.version == 1 and notifications.wake is not None)
        reader.change(777)
        assert notifications.wake is not None
        notifications.wake()
        await eventually(lambda: cache.version == 2)
        assert (await cache.tariffs())["other"].rate == 777
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_run_polls_and_keeps_going_after_failures() -> None:
    reader = FakeReader()
    cache = CachedGlobals(reader, poll_s=0.01)
    task = asyncio.create_task(cache.run())
    try:
        await eventually(lambda: cache.version == 1)
        reader.down = True
        tried = reader.reads.count("version")
        await eventually(lambda: reader.reads.count("version") >= tried + 3)
        reader.down = False
        reader.change(500)
        await eventually(lambda: cache.version == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


class BrokenNotifications:
    async def listen(self, wake: Callable[[], None]) -> None:
        raise ValueError("cannot listen: a bad option")


async def test_listening_that_dies_is_said_and_polling_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that dies instead of listening (it once did, on an engine option that a
    NullPool refuses) leaves the cache polling alone: that is logged, not silent."""
    reader = FakeReader()
    cache = CachedGlobals(reader, BrokenNotifications(), poll_s=0.01)
    task = asyncio.create_task(cache.run())
    try:
        await eventually(lambda: "stopped listening for changes" in caplog.text)
        assert "ValueError: cannot listen: a bad option" in caplog.text
        reader.change(500)
        await eventually(lambda: cache.version == 2)  # polled
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
