"""ChannelTracker: following channel events, and the snapshot taken on every (re)connect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callcontrol.adapters.ami.channels import ChannelTracker
from callcontrol.adapters.ami.session import AmiActionLost, AmiSession

from .ami_peer import ScriptedAmi, channel_row
from .helpers import eventually

A = ("1700000000.1", "PJSIP/cell-0101-00000001")
B = ("1700000000.2", "PJSIP/cell-0102-00000002")
C = ("1700000000.3", "PJSIP/cell-0103-00000003")


def newchannel(uid: str, name: str, state: str = "Ring") -> dict[str, str]:
    return {"Event": "Newchannel", **channel_row(uid, name, state=state)}


@pytest.fixture
async def tracked(ami: ScriptedAmi) -> AsyncIterator[tuple[AmiSession, ChannelTracker]]:
    session = AmiSession(
        "127.0.0.1", ami.port, ami.username, ami.secret, reconnect_s=0.05, action_timeout=1.0
    )
    tracker = ChannelTracker()
    tracker.attach(session)
    await session.start()
    yield session, tracker
    await session.stop()


async def test_follows_events(ami: ScriptedAmi, tracked: tuple[AmiSession, ChannelTracker]) -> None:
    session, tracker = tracked
    hangups: list[tuple[str, str, str]] = []
    tracker.on_hangup(lambda *args: hangups.append(args))
    await session.wait_connected(2.0)
    await eventually(lambda: ami.count("CoreShowChannels") == 1)
    before = datetime.now(UTC)
    await ami.send_event(newchannel(*A))
    await eventually(lambda: tracker.get(A[0]) is not None)
    chan = tracker.get(A[0])
    assert chan is not None
    assert (chan.channel, chan.state, chan.caller_id, chan.exten, chan.context, chan.linkedid) == (
        A[1],
        "Ring",
        "cell-0101",
        "07700900123",
        "cells",
        A[0],
    )
    assert chan.created_at.tzinfo is not None and chan.created_at >= before
    await ami.send_event({"Event": "Newstate", **channel_row(*A, state="Up")})
    await eventually(lambda: tracker.get(A[0]).state == "Up")  # type: ignore[union-attr]
    assert tracker.get(A[0]).created_at == chan.created_at  # type: ignore[union-attr]
    await ami.send_event(newchannel(*B))
    await eventually(lambda: len(tracker.live()) == 2)
    await ami.send_event(
        {"Event": "Hangup", **channel_row(*A), "Cause": "16", "Cause-txt": "Normal Clearing"}
    )
    await eventually(lambda: hangups == [(A[0], "16", "Normal Clearing")])
    assert [c.uniqueid for c in tracker.live()] == [B[0]]


async def test_first_only_hangups_are_a_calls_first_channel(
    ami: ScriptedAmi, tracked: tuple[AmiSession, ChannelTracker]
) -> None:
    """The daemon ends a call's record on its handset channel's hangup only: the channels the
    call led to (the decision's Local pair, the called party) carry the handset's Linkedid."""
    session, tracker = tracked
    every: list[str] = []
    first: list[str] = []
    tracker.on_hangup(lambda uid, *_: every.append(uid))
    tracker.on_hangup(lambda uid, *_: first.append(uid), first_only=True)
    await session.wait_connected(2.0)
    local = {**channel_row("1700000000.4", "Local/decide@cc-decide-00000001;2"), "Linkedid": A[0]}
    outbound = {**channel_row("1700000000.5", "PJSIP/pstn-00000002"), "Linkedid": A[0]}
    no_link = {k: v for k, v in channel_row(*C).items() if k != "Linkedid"}
    for row in (local, outbound, channel_row(*A), no_link):
        await ami.send_event({"Event": "Hangup", **row, "Cause": "16", "Cause-txt": "x"})
    await eventually(lambda: len(every) == 4)
    await eventually(lambda: len(first) == 2)
    assert every == ["1700000000.4", "1700000000.5", A[0], C[0]]
    assert first == [A[0], C[0]]  # without a Linkedid a channel is taken as first


async def test_snapshot_on_connect_and_reconnect(
    ami: ScriptedAmi, tracked: tuple[AmiSession, ChannelTracker]
) -> None:
    session, tracker = tracked
    gone: list[str] = []
    tracker.on_gone(gone.append)
    ami.channels = [channel_row(*A, duration="00:01:40")]
    await eventually(lambda: tracker.get(A[0]) is not None)
    age = datetime.now(UTC) - tracker.get(A[0]).created_at  # type: ignore[union-attr]
    assert timedelta(seconds=99) < age < timedelta(seconds=110)
    await ami.send_event(newchannel(*B))
    await eventually(lambda: len(tracker.live()) == 2)
    b_created = tracker.get(B[0]).created_at  # type: ignore[union-attr]

    await ami.drop_connections()
    await eventually(lambda: not session.connected)
    ami.channels = [channel_row(*B), channel_row(*C)]  # A ended while we were away; C began
    await eventually(lambda: ami.logins == 2)
    await eventually(lambda: gone == [A[0]])
    assert sorted(c.uniqueid for c in tracker.live()) == [B[0], C[0]]
    assert tracker.get(B[0]).created_at == b_created  # type: ignore[union-attr]


class FakeSource:
    """Stands in for AmiSession to interleave events with a slow snapshot."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Any], Any]] = {}
        self.connected: list[Callable[[], Any]] = []
        self.gate = asyncio.Event()
        self.rows: list[dict[str, str]] = []
        self.fail: Exception | None = None

    def on(self, pattern: str, callback: Callable[[Any], Any]) -> None:
        self.handlers[pattern] = callback

    def on_connected(self, callback: Callable[[], Any]) -> None:
        self.connected.append(callback)

    async def core_show_channels(self) -> list[dict[str, str]]:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.rows


async def test_events_during_snapshot_win() -> None:
    source = FakeSource()
    tracker = ChannelTracker()
    tracker.attach(source)
    gone: list[str] = []
    tracker.on_gone(gone.append)
    source.handlers["Newchannel"](newchannel(*A))
    assert source.connected == [tracker.refresh]
    refresh = asyncio.create_task(tracker.refresh())
    await asyncio.sleep(0)
    source.rows = [channel_row(*A), channel_row(*B)]  # taken before the events below
    source.handlers["Hangup"]({"Event": "Hangup", **channel_row(*B), "Cause": "16"})
    source.handlers["Newchannel"](newchannel(*C))
    source.gate.set()
    await refresh
    assert sorted(c.uniqueid for c in tracker.live()) == [A[0], C[0]]  # B not resurrected
    assert gone == []  # C is not in the snapshot but is new, not gone


async def test_failed_snapshot_keeps_the_table(caplog: pytest.LogCaptureFixture) -> None:
    source = FakeSource()
    tracker = ChannelTracker()
    tracker.attach(source)
    source.handlers["Newchannel"](newchannel(*A))
    source.fail = AmiActionLost("dropped")
    source.gate.set()
    await tracker.refresh()
    assert [c.uniqueid for c in tracker.live()] == [A[0]]
    assert "channel snapshot failed" in caplog.text
