"""Which Asterisk channels are alive, followed from AMI events and re-checked on every login.

Events keep the table current while connected; after every (re)connect a CoreShowChannels
snapshot replaces it, so channels that ended while the connection was down are reported through
``on_gone`` instead of lingering. Events that arrive while the snapshot is being taken win over
it: a channel hung up meanwhile is not brought back, one created meanwhile is not dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger("callcontrol.ami.channels")

HangupCallback = Callable[[str, str, str], Any]
GoneCallback = Callable[[str], Any]


class EventSource(Protocol):
    """What the tracker needs from an AMI session (AmiSession provides it)."""

    def on(self, pattern: str, callback: Callable[[Any], Any]) -> Any: ...

    def on_connected(self, callback: Callable[[], Any]) -> Any: ...

    async def core_show_channels(self) -> list[dict[str, str]]: ...


@dataclass(frozen=True)
class LiveChannel:
    uniqueid: str
    channel: str
    linkedid: str
    state: str
    caller_id: str
    exten: str
    context: str
    created_at: datetime  # UTC, aware


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key, "")
    return value if isinstance(value, str) else str(value)


def _duration(text: str) -> timedelta:
    try:
        hours, minutes, seconds = (int(part) for part in text.split(":"))
    except ValueError:
        return timedelta(0)
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


class ChannelTracker:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._channels: dict[str, LiveChannel] = {}
        self._hangup_cbs: list[tuple[HangupCallback, bool]] = []
        self._gone_cbs: list[GoneCallback] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._source: EventSource | None = None
        self._refreshing = False
        self._touched: set[str] = set()  # seen in events during a refresh
        self._ended: set[str] = set()  # hung up during a refresh

    def attach(self, session: EventSource) -> None:
        self._source = session
        session.on("Newchannel", self._on_channel_event)
        session.on("Newstate", self._on_channel_event)
        session.on("NewCallerid", self._on_channel_event)
        session.on("Hangup", self._on_hangup)
        session.on_connected(self.refresh)

    def live(self) -> list[LiveChannel]:
        return list(self._channels.values())

    def get(self, uniqueid: str) -> LiveChannel | None:
        return self._channels.get(uniqueid)

    def on_hangup(self, callback: HangupCallback, *, first_only: bool = False) -> HangupCallback:
        """Call ``callback(uniqueid, cause, cause_txt)`` on every Hangup event; with
        ``first_only``, only for a call's first channel (its Uniqueid is its Linkedid: the
        channel that started it, such as a handset's), not for the channels it led to (the
        decision's Local pair, the called party's leg), which are three of a call's four."""
        self._hangup_cbs.append((callback, first_only))
        return callback

    def on_gone(self, callback: GoneCallback) -> GoneCallback:
        """Call ``callback(uniqueid)`` for channels found gone by a snapshot after a reconnect."""
        self._gone_cbs.append(callback)
        return callback

    def _upsert(self, fields: Mapping[str, Any], created_at: datetime | None = None) -> str:
        uid = _text(fields, "Uniqueid")
        if not uid:
            return ""
        old = self._channels.get(uid)
        new = LiveChannel(
            uniqueid=uid,
            channel=_text(fields, "Channel") or (old.channel if old else ""),
            linkedid=_text(fields, "Linkedid") or (old.linkedid if old else uid),
            state=_text(fields, "ChannelStateDesc") or (old.state if old else ""),
            caller_id=_text(fields, "CallerIDNum") or (old.caller_id if old else ""),
            exten=_text(fields, "Exten") or (old.exten if old else ""),
            context=_text(fields, "Context") or (old.context if old else ""),
            created_at=old.created_at if old else (created_at or self._clock()),
        )
        self._channels[uid] = new
        return uid

    def _on_channel_event(self, event: Mapping[str, Any]) -> None:
        uid = self._upsert(event)
        if uid and self._refreshing:
            self._touched.add(uid)

    def _on_hangup(self, event: Mapping[str, Any]) -> None:
        uid = _text(event, "Uniqueid")
        if not uid:
            return
        self._channels.pop(uid, None)
        if self._refreshing:
            self._ended.add(uid)
        linked = _text(event, "Linkedid")
        first = not linked or linked == uid  # without a Linkedid: taken as first
        for callback, first_only in list(self._hangup_cbs):
            if first or not first_only:
                self._call(callback, uid, _text(event, "Cause"), _text(event, "Cause-txt"))

    async def refresh(self) -> None:
        """Replace the table with a CoreShowChannels snapshot; report vanished channels."""
        if self._source is None:
            raise RuntimeError("ChannelTracker.refresh() before attach()")
        if self._refreshing:
            return
        self._refreshing = True
        self._touched.clear()
        self._ended.clear()
        try:
            rows = await self._source.core_show_channels()
        except Exception as exc:
            log.warning("channel snapshot failed, keeping %d known channels: %s", len(self), exc)
            return
        finally:
            self._refreshing = False
        now = self._clock()
        seen: set[str] = set()
        for row in rows:
            uid = _text(row, "Uniqueid")
            if uid and uid not in self._ended:
                self._upsert(row, now - _duration(_text(row, "Duration")))
                seen.add(uid)
        gone = [u for u in self._channels if u not in seen and u not in self._touched]
        for uid in gone:
            del self._channels[uid]
        if gone:
            log.info("channels gone while AMI was disconnected: %s", ", ".join(gone))
        for uid in gone:
            for callback in list(self._gone_cbs):
                self._call(callback, uid)

    def __len__(self) -> int:
        return len(self._channels)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            log.exception("channel tracker callback %r failed", callback)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)  # strong reference until done
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("channel tracker callback task failed", exc_info=task.exception())
