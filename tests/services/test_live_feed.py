"""The live calls feed (services/live_feed.py) over the supervision fakes: bridged calls only,
one snapshot shared by every page, a hangup seen at once, and the caps on watchers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callcontrol.services.live_feed import LiveFeed
from callcontrol.services.supervise import AsteriskUnavailable
from tests.services.test_supervise import T0, World, call


class Counting:
    """The supervisor, counting its live_calls (a database query in the daemon)."""

    def __init__(self, w: World) -> None:
        self.w, self.asked = w, 0

    async def live_calls(self) -> Any:
        self.asked += 1
        return await self.w.supervisor.live_calls()


def ids(view: Any) -> list[int]:
    return [c.call.call_id for c in view.calls]


async def test_only_bridged_calls_are_listed() -> None:
    w = World([call(1, answered_at=T0), call(2), call(3)])
    w.accepted = {"1700000000.3": T0}  # call 3 accepted per the journal, call 2 still ringing
    feed = LiveFeed(w.supervisor)
    assert ids(await feed.current()) == [1, 3]


async def test_one_snapshot_serves_every_page_and_a_poke_refreshes_it_at_once() -> None:
    w = World([call(1, answered_at=T0), call(2, answered_at=T0)])
    counting = Counting(w)
    now = [100.0]
    feed = LiveFeed(counting, interval=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(20):
        await feed.current()
    assert counting.asked == 1
    del w.channels["1700000000.2"]  # call 2 hangs up
    assert ids(await feed.current()) == [1, 2]  # not yet seen...
    feed.poke()  # ...until the tracker's Hangup pokes the feed
    assert ids(await feed.current()) == [1] and counting.asked == 2
    now[0] += 1.0
    await feed.current()
    assert counting.asked == 3


async def test_a_page_gets_the_table_then_only_its_changes() -> None:
    w = World([call(1, answered_at=T0), call(2, answered_at=T0)])
    feed = LiveFeed(w.supervisor, interval=0.05)
    seen: list[list[int]] = []
    async with feed.watching("officer.smith") as changes:

        async def page() -> None:
            async for view in changes:
                seen.append(ids(view))
                if len(seen) == 2:
                    return

        watching = asyncio.create_task(page())
        await asyncio.sleep(0.3)  # several snapshots, the same calls: sent once
        assert seen == [[1, 2]]
        del w.channels["1700000000.1"]
        feed.poke()
        await asyncio.wait_for(watching, 2)
    assert seen == [[1, 2], [2]]


async def test_watchers_are_capped_in_all_and_per_person() -> None:
    w = World([call(1)])
    feed = LiveFeed(w.supervisor, max_watchers=3, max_per_person=2)
    async with feed.watching("a"), feed.watching("a"):
        with pytest.raises(AsteriskUnavailable, match="2 live calls pages"):
            async with feed.watching("a"):
                pass
        async with feed.watching("b"):
            with pytest.raises(AsteriskUnavailable, match="3 pages"):
                async with feed.watching("c"):
                    pass
    async with feed.watching("a"), feed.watching("a"):
        pass  # the places are given back when pages leave
