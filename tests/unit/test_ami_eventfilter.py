"""manager.conf's eventfilter lets through exactly the AMI events callcontrol uses.

The filter is matched here as Asterisk matches it: glibc's regcomp(REG_EXTENDED | REG_NOSUB)
and regexec on the event's whole text (main/manager.c, match_eventdata), through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
from typing import Any

import pytest

from callcontrol.adapters.ami.channels import ChannelTracker
from callcontrol.adapters.ami.events import (
    USED_EVENTS,
    UnusedEventWarning,
    unused_event,
)
from callcontrol.adapters.asterisk import expected as ex
from callcontrol.config import Settings
from callcontrol.resources import asterisk_templates_dir

_libc = ctypes.CDLL(ctypes.util.find_library("c"))
REG_EXTENDED, REG_NOSUB = 1, 8

# Events of the call and reporting classes that a call makes and callcontrol never uses, with
# names that begin like a used one.
UNUSED = [
    "HangupRequest", "SoftHangupRequest", "HangupHandlerRun", "NewConnectedLine",
    "NewAccountCode", "Newexten", "VarSet", "DialBegin", "DialEnd", "DialState", "BridgeCreate",
    "BridgeEnter", "BridgeLeave", "BridgeDestroy", "LocalBridge", "RTCPSent", "RTCPReceived",
    "MixMonitorStart", "ChanSpyStart", "DeviceStateChange", "OriginateResponses", "Newchannels",
    "newchannel", "TestEvent",
]  # fmt: skip


def posix_match(pattern: str, text: str) -> bool:
    regex = ctypes.create_string_buffer(256)  # a regex_t is 64 bytes on x86-64 glibc
    assert _libc.regcomp(regex, pattern.encode(), REG_EXTENDED | REG_NOSUB) == 0, pattern
    try:
        return _libc.regexec(regex, text.encode(), 0, None, 0) == 0
    finally:
        _libc.regfree(regex)


def event_text(name: str, **fields: str) -> str:
    """An event as Asterisk formats it (__manager_event_sessions_va)."""
    lines = [f"Event: {name}", "Privilege: call,all", *(f"{k}: {v}" for k, v in fields.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def packaged_filters() -> list[str]:
    text = (asterisk_templates_dir() / "manager.conf").read_text()
    return [m.group(1) for m in re.finditer(r"(?m)^eventfilter\s*=\s*(.+?)\s*$", text)]


def passes(text: str) -> bool:
    """Asterisk's should_send_event with include filters only: any one of them matches."""
    return any(posix_match(f, text) for f in packaged_filters())


def test_the_daemons_account_has_one_include_filter() -> None:
    [line] = packaged_filters()  # one regex: one regexec an event, not one a name
    assert not line.startswith("!")
    # It sits in the daemon's section, the last one: after its read line.
    text = (asterisk_templates_dir() / "manager.conf").read_text()
    assert text.index("[@@AMI_USERNAME@@]") < text.index("read = ") < text.index("eventfilter")


@pytest.mark.parametrize("name", sorted(USED_EVENTS))
def test_every_used_event_passes(name: str) -> None:
    assert passes(event_text(name, Channel="PJSIP/A1-01-00000001", Uniqueid="1700000000.1"))


@pytest.mark.parametrize("name", UNUSED)
def test_no_other_event_passes(name: str) -> None:
    assert not passes(event_text(name, Channel="PJSIP/A1-01-00000001"))


def test_an_event_line_inside_a_field_does_not_pass() -> None:
    # A handset's caller name is the handset's to choose; ^ anchors at the text's start only.
    hostile = event_text("NewConnectedLine", ConnectedLineName="x\r\nEvent: Hangup\r\n")
    assert not passes(hostile)
    assert not passes(event_text("VarSet", Variable="Event: Newchannel ", Value="1"))


def test_the_channel_tracker_listens_only_for_used_events() -> None:
    names: list[str] = []

    class Source:
        def on(self, pattern: str, callback: Any) -> None:
            names.append(pattern)

        def on_connected(self, callback: Any) -> None:
            pass

        async def core_show_channels(self) -> list[dict[str, str]]:
            return []

    ChannelTracker().attach(Source())
    assert names and set(names) <= USED_EVENTS


def test_unused_events_are_told_from_replies_and_login() -> None:
    assert unused_event({"Event": "DialBegin", "Channel": "PJSIP/x"}) == "DialBegin"
    assert unused_event({"Event": "Hangup", "Uniqueid": "1"}) is None
    assert unused_event({"Event": "FullyBooted"}) is None
    assert unused_event({"Event": "CoreShowChannel", "ActionID": "a/1"}) is None
    assert unused_event({"Response": "Success", "ActionID": "a/2"}) is None


def test_the_daemon_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    warn = UnusedEventWarning(logging.getLogger("test.ami"))
    with caplog.at_level(logging.DEBUG, "test.ami"):
        for name in ("Newchannel", "DialBegin", "DialBegin", "BridgeEnter", "FullyBooted"):
            warn({"Event": name})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "DialBegin" in warnings[0].getMessage()
    assert "eventfilter" in warnings[0].getMessage()
    assert len(caplog.records) == 2  # BridgeEnter: debug only


def test_asterisk_check_reports_events_the_filter_keeps_back() -> None:
    want = ex.expected(Settings(), "", {})
    got = ex.Observed(ami_unused_events={"RTCPSent", "DialBegin"})
    assert ex.differences(want, got) == [
        "AMI user callcontrol: receives events callcontrol does not use (DialBegin, RTCPSent): "
        "the eventfilter line of the packaged manager.conf is missing"
    ]
    assert ex.differences(want, ex.Observed(ami_unused_events=set())) == []
