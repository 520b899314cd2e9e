"""The daemon's AMI account receives only the events callcontrol uses, against the real lab.

Without manager.conf's eventfilter Asterisk formats and sends the account every event of its
read classes (call, reporting: DialBegin, BridgeEnter, RTCPSent, HangupRequest, ...) and the
daemon parses each. With it, only callcontrol/adapters/ami/events.py's list arrives; what depends
on those events (the live channels, a call's end, listening in) still works.
"""

from __future__ import annotations

import asyncio

import pytest

from callcontrol.adapters.ami.events import USED_EVENTS
from callcontrol.adapters.ami.session import AmiError, AmiSession
from callcontrol.config import load_settings
from tests.e2e.ami_watch import RawAmi
from tests.e2e.conftest import E2E, PORTS
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

# Events a connected call makes that the daemon never uses: none may reach its account.
UNUSED = {
    "Newexten", "VarSet", "DialBegin", "DialEnd", "DialState", "BridgeCreate", "BridgeEnter",
    "BridgeLeave", "BridgeDestroy", "RTCPSent", "RTCPReceived", "HangupRequest",
    "SoftHangupRequest", "NewConnectedLine", "MixMonitorStart", "MixMonitorStop",
    "HangupHandlerRun", "DeviceStateChange", "AGIExecStart", "AGIExecEnd",
}  # fmt: skip


def daemon_watch(e2e: E2E) -> RawAmi:
    settings = load_settings(e2e.config)
    return RawAmi("127.0.0.1", PORTS["ami"], settings.ami.username, settings.ami_secret())


def test_a_connected_call_sends_the_daemon_only_the_events_it_uses(e2e: E2E) -> None:
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    watch = daemon_watch(e2e)

    async def watched_call() -> dict[str, object]:
        await watch.start()
        try:
            return await asyncio.to_thread(e2e.call, cell, pin, "02079460000", 2)
        finally:
            await asyncio.sleep(1)  # the last Hangup
            await watch.stop()

    call = asyncio.run(watched_call())
    assert call["outcome"] == "connected", call
    counts = watch.counts()
    print(f"\nAMI events for one connected call: {sum(counts.values())}, {watch.bytes()} bytes")
    print(dict(sorted(counts.items())))
    assert set(counts) <= USED_EVENTS, (
        f"events callcontrol does not use: {set(counts) - USED_EVENTS}"
    )
    assert not set(counts) & UNUSED
    # The cell's channel and the trunk's: each created, answered and hung up, as the daemon sees.
    for prefix in (f"PJSIP/{cell}-", "PJSIP/pstn-"):
        seen = {m.event for m in watch.events() if m.headers.get("Channel", "").startswith(prefix)}
        assert {"Newchannel", "Newstate", "Hangup"} <= seen, (prefix, seen)
    hangups = [m for m in watch.events() if m.event == "Hangup"]
    assert all(m.headers.get("Uniqueid") and m.headers.get("Cause") for m in hangups), hangups
    # The daemon warns of an account without the filter (events.UnusedEventWarning): not here.
    assert "which callcontrol does not use" not in e2e.daemon.log.read_text()


def test_an_originates_outcome_still_reaches_the_daemon(e2e: E2E) -> None:
    # OriginateResponse is an event like any other: filtered out, every listen would time out
    # instead of failing (or succeeding) with Asterisk's answer.
    settings = load_settings(e2e.config)
    watch = daemon_watch(e2e)

    async def originate() -> str:
        ami = AmiSession("127.0.0.1", PORTS["ami"], settings.ami.username, settings.ami_secret())
        await watch.start()
        await ami.start()
        try:
            await ami.wait_connected(10)
            with pytest.raises(AmiError) as failed:
                await ami.originate(
                    "PJSIP/no-such-desk", context="cc-listen", exten="s", timeout_ms=3000
                )
            return str(failed.value)
        finally:
            await ami.stop()
            await asyncio.sleep(0.5)  # the watcher's copy of the event, read on its own socket
            await watch.stop()

    assert "reason" in asyncio.run(originate())
    assert "OriginateResponse" in watch.counts()
    assert set(watch.counts()) <= USED_EVENTS
