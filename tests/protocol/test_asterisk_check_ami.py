"""`asterisk check` over AMI: events the daemon's account should not receive are noticed."""

from __future__ import annotations

from callcontrol.adapters.asterisk.expected import Observed
from callcontrol.adapters.asterisk.observe import observe_ami

from .ami_peer import ScriptedAmi, channel_row


async def check(ami: ScriptedAmi) -> Observed:
    got = Observed()
    await observe_ami(
        "127.0.0.1", ami.port, ami.username, ami.secret, ["cells"], ["CC_AGI_URL"], got, 2.0
    )
    assert got.unreachable == []
    return got


async def test_an_account_without_the_eventfilter_is_noticed(ami: ScriptedAmi) -> None:
    row = channel_row("1700000000.1", "PJSIP/A1-01-00000001")
    ami.login_events = [
        {"Event": "Newchannel", **row},
        {"Event": "DialBegin", **row},
        {"Event": "RTCPSent", "Channel": row["Channel"]},
    ]
    got = await check(ami)
    assert got.ami_unused_events == {"DialBegin", "RTCPSent"}
    assert got.contexts == {"cells": True} and got.globals == {"CC_AGI_URL": "set"}


async def test_a_filtered_account_shows_nothing_unused(ami: ScriptedAmi) -> None:
    row = channel_row("1700000000.1", "PJSIP/A1-01-00000001")
    ami.login_events = [{"Event": "Newstate", **row}, {"Event": "Hangup", **row, "Cause": "16"}]
    assert (await check(ami)).ami_unused_events == set()
