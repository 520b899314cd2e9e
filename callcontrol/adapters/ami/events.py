"""The AMI events callcontrol uses, the one list behind manager.conf's eventfilter.

Asterisk sends an account every event of its read classes (call, reporting: DialBegin,
BridgeEnter, RTCPSent, HangupRequest, ...) unless the account has an ``eventfilter``; the daemon
uses only these, so the packaged manager.conf lets only these through and `callcontrol asterisk
check` reports any other it sees. Action replies and the events of list replies
(CoreShowChannel, CoreShowChannelsComplete) and FullyBooted are written straight to the session
by Asterisk and never pass an eventfilter, so they are not here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

# ChannelTracker (channels.py): the live-channel table, a call's end, the console's live feed.
CHANNEL_EVENTS = ("Newchannel", "Newstate", "NewCallerid", "Hangup")
# AmiSession.originate (Async): the outcome of listening in (an officer's desk, the console's
# AudioSocket) arrives as this event, not as the action's reply.
ORIGINATE_EVENTS = ("OriginateResponse",)
USED_EVENTS = frozenset(CHANNEL_EVENTS + ORIGINATE_EVENTS)
# Sent by Asterisk at login whatever the filter.
UNFILTERED = frozenset({"FullyBooted"})


def unused_event(event: Mapping[str, Any]) -> str | None:
    """The event's name if the account should not have received it (its manager.conf lacks the
    packaged eventfilter); None for a used event, a reply's event (it carries an ActionID: list
    items, a late reply) or one sent whatever the filter."""
    name = str(event.get("Event", "") or "")
    if not name or name in USED_EVENTS or name in UNFILTERED or event.get("ActionID"):
        return None
    return name


class UnusedEventWarning:
    """An AMI event callback that says once, as a warning, that the account receives events
    callcontrol does not use: its manager.conf lacks the eventfilter, and Asterisk and the
    daemon spend time on each one."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._seen: set[str] = set()

    def __call__(self, event: Mapping[str, Any]) -> None:
        name = unused_event(event)
        if name is None or name in self._seen:
            return
        self._seen.add(name)
        level = logging.WARNING if len(self._seen) == 1 else logging.DEBUG
        self._log.log(
            level,
            "AMI: Asterisk sends this account %s events, which callcontrol does not use: give "
            "it the eventfilter line of the packaged manager.conf (`callcontrol asterisk check`)",
            name,
        )
