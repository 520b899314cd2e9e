"""An AMI session: panoramisk's Manager for framing and events, its dangerous parts replaced.

Replaced: (re)connecting (a task with float delays that also retries after a refused login),
resending unanswered actions after a reconnect (they fail with AmiActionLost instead: resending a
Hangup or Originate is never safe), fire-and-forget callback tasks (held in a set until done) and
per-read decoding (whole messages are decoded, so a UTF-8 character split across two reads
survives; garbage is logged and skipped, never fatal).

Action timeouts: ``action()`` waits ``action_timeout`` seconds (or its ``timeout``) and then
raises AmiActionTimeout, a subclass of AmiActionLost: the action may or may not have run, it is
forgotten (a late reply is dropped) and never resent. Every ``ping_interval`` seconds a Ping is
sent; if it is not answered within ``action_timeout`` the connection is dropped and remade.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

log = logging.getLogger("callcontrol.ami")

_EOM = b"\r\n\r\n"
_BANNER = b"Asterisk Call Manager/"
_MAX_PENDING_BYTES = 1 << 20

EventCallback = Callable[[Message], Any]


class AmiError(Exception):
    """Asterisk answered the action with Response: Error (or another failure)."""


class AmiUnavailable(AmiError):
    """Not connected and logged in right now."""


class AmiActionLost(Exception):
    """No reply: the connection dropped (or the session stopped) first. Never resent."""


class AmiActionTimeout(AmiActionLost, TimeoutError):
    """No reply within the action timeout. The outcome is unknown; the action is not resent."""


class _GuardedProtocol(AMIProtocol):
    """AMIProtocol that decodes whole messages, survives garbage and fails pending actions."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.log = log
        self.encoding = "utf-8"
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending = b""

    def data_received(self, data: bytes) -> None:
        buf = self._pending + data
        if self.version is None and buf.startswith(_BANNER) and b"\r\n" in buf:
            banner, _, buf = buf.partition(b"\r\n")
            self.version = banner.decode("utf-8", "replace").partition("/")[2].strip()
            log.info("AMI protocol version %s", self.version)
        *chunks, self._pending = buf.split(_EOM)
        if len(self._pending) > _MAX_PENDING_BYTES:
            log.warning("AMI: %d bytes without a message end; dropping them", len(self._pending))
            self._pending = b""
        for chunk in chunks:
            self._handle_chunk(chunk)

    def _handle_chunk(self, chunk: bytes) -> None:
        text = chunk.decode("utf-8", "replace").strip()
        if not text:
            return
        if "\ufffd" in text:
            log.warning("AMI: undecodable bytes in message %r", text[:120])
        try:
            message = Message.from_line(text)
            if message is None:
                log.warning("AMI: ignoring unparsable data %r", text[:120])
                return
            self.handle_message(message)
        except Exception:
            log.warning("AMI: ignoring message that could not be handled %r", text[:120])
            log.debug("AMI handling error", exc_info=True)

    def drop(self) -> None:
        """Fail pending actions and abort the connection (dead peer or shutdown)."""
        self.close()
        with contextlib.suppress(Exception):
            self.transport.abort()

    def close(self) -> None:
        for key in list(self.responses):
            action = self.responses.pop(key)
            if not action.future.done():
                name = action.get("action", "?")
                action.future.set_exception(AmiActionLost(f"AMI connection lost before {name}"))
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()
        if not self.lost.done():
            self.lost.set_result(None)


class AmiSession(Manager):
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        reconnect_s: float = 2.0,
        action_timeout: float = 5.0,
        ping_interval: float = 20,
    ) -> None:
        super().__init__(host=host, port=port, username=username, secret=secret, log=log)
        self.callbacks.clear()  # drop panoramisk's FullyBooted -> send_awaiting_actions
        self.patterns = []
        self._reconnect_s = reconnect_s
        self._action_timeout = action_timeout
        self._ping_interval = ping_interval
        self._connected_cbs: list[Callable[[], Any]] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._quiet = False  # connect failures: one warning, then debug until connected again
        self.lost_at: datetime | None = None  # when an authenticated connection was lost

    @property
    def connected(self) -> bool:
        proto = self.protocol
        return bool(self.authenticated and proto is not None and not proto.closed)

    @property
    def callback_tasks(self) -> frozenset[asyncio.Future[Any]]:
        """Callback tasks still running (held here so the loop's weak refs cannot lose them)."""
        return frozenset(self._tasks)

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._runner is not None:
            raise RuntimeError("AmiSession already started")
        self.loop = asyncio.get_running_loop()
        self._stopping = False
        self._runner = asyncio.create_task(self._run(), name="ami-session")

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109 - documented API
        """Wait until logged in; raises AmiUnavailable after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError as exc:
            raise AmiUnavailable(f"AMI not connected within {timeout:g}s") from exc

    async def stop(self) -> None:
        """Disconnect for good: pending actions fail with AmiActionLost, no reconnect follows."""
        self._stopping = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("use 'await AmiSession.start()'")

    async def send_awaiting_actions(self, *_: Any) -> None:
        """panoramisk would resend unanswered actions here: fail them instead, never resend."""
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(AmiActionLost("not resent after reconnect"))

    async def _run(self) -> None:
        host, port = self.config["host"], self.config["port"]
        try:
            while not self._stopping:
                proto: _GuardedProtocol | None = None
                try:
                    _, proto = await asyncio.wait_for(
                        self.loop.create_connection(_GuardedProtocol, host, port),
                        max(self._action_timeout, 1.0),
                    )
                except (OSError, TimeoutError) as exc:
                    level = logging.DEBUG if self._quiet else logging.WARNING
                    log.log(level, "AMI connect to %s:%s failed: %s; retrying", host, port, exc)
                    self._quiet = True
                if proto is not None:
                    try:
                        await self._serve(proto)
                    finally:
                        if self.authenticated:
                            # When Asterisk was last known to be there (calls it had may
                            # have ended with it).
                            self.lost_at = datetime.now(UTC)
                        self.authenticated = False
                        self._ready.clear()
                        proto.drop()
                    if not self._stopping:
                        log.warning("AMI connection to %s:%s lost; reconnecting", host, port)
                await asyncio.sleep(self._reconnect_s)
        finally:
            if self.protocol is not None:
                self.protocol.drop()

    async def _serve(self, proto: _GuardedProtocol) -> None:
        proto.factory = self
        self.protocol = proto
        user = self.config["username"]
        login = {"Action": "Login", "Username": user, "Secret": self.config["secret"]}
        login["Events"] = self.config["events"]
        try:
            reply = await self._exchange(proto, login, self._action_timeout)
        except AmiActionLost as exc:
            log.error("AMI login for user %s got no reply: %s", user, exc)
            proto.drop()
            return
        if not isinstance(reply, Message) or not reply.success:
            why = reply.message if isinstance(reply, Message) else reply
            log.error("AMI login refused for user %s: %s", user, why)
            proto.drop()
            return
        self.authenticated, self._quiet = True, False
        self._ready.set()
        log.info("AMI logged in as %s", user)
        for callback in list(self._connected_cbs):
            self._call(callback)
        pinger = asyncio.create_task(self._pinger(proto))
        try:
            await proto.lost
        finally:
            pinger.cancel()

    async def _pinger(self, proto: _GuardedProtocol) -> None:
        while not proto.closed:
            await asyncio.sleep(self._ping_interval)
            try:
                await self._exchange(proto, {"Action": "Ping"}, self._action_timeout)
            except AmiActionLost as exc:
                log.warning("AMI ping unanswered (%s); dropping the connection", exc)
                proto.drop()
                return

    def on(self, pattern: str, callback: EventCallback) -> EventCallback:
        """Call ``callback(message)`` (plain or async) for events matching an fnmatch pattern."""
        return self.register_event(pattern, callback)

    def on_connected(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Call ``callback()`` (plain or async) after every successful login."""
        self._connected_cbs.append(callback)
        return callback

    def dispatch(self, event: Message) -> list[str]:
        matches = []
        for pattern, regexp in self.patterns:
            if regexp.match(str(event.event)) is None:
                continue
            matches.append(pattern)
            for callback in self.callbacks[pattern]:
                self._call(callback, event)
        return matches

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            log.exception("AMI callback %r failed", callback)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)  # strong reference until done (the loop keeps only weak ones)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI callback task failed", exc_info=task.exception())

    async def _exchange(
        self, proto: _GuardedProtocol, action: Mapping[str, Any], wait_s: float
    ) -> Message | list[Message]:
        act = actions.Action(dict(action), as_list=None)
        future = proto.send(act, as_list=None)
        try:
            return await asyncio.wait_for(future, wait_s)
        except TimeoutError as exc:
            name = act.get("action", "?")
            raise AmiActionTimeout(f"no reply to {name} within {wait_s:g}s") from exc
        finally:
            proto.responses.pop(act.id, None)  # a late reply is dropped, never matched

    async def action(
        self,
        action: Mapping[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109 - documented API
    ) -> Message | list[Message]:
        """Send one action; returns its reply, or the list of reply and events for list actions.

        Raises AmiUnavailable (not connected), AmiError (Response: Error/Failure),
        AmiActionLost (connection dropped first), AmiActionTimeout (no reply in time).
        """
        proto = self.protocol
        if not self.connected or proto is None:
            raise AmiUnavailable(f"AMI not connected; {action.get('Action')} not sent")
        wait = self._action_timeout if timeout is None else timeout
        reply = await self._exchange(proto, action, wait)
        first = _first(reply)
        if not first.success:
            raise AmiError(f"{action.get('Action')} failed: {first.message or first.response}")
        return reply

    async def command(self, cli_text: str) -> str:
        """Run a CLI command (Action: Command) and return its output."""
        first = _first(await self.action({"Action": "Command", "Command": cli_text}))
        output = first.get("Output", [])
        lines = [output] if isinstance(output, str) else list(output)
        if not lines and first.content:  # pre-Asterisk-14 "Response: Follows" body
            lines = first.content.replace("--END COMMAND--", "").rstrip().split("\n")
        return "\n".join(lines)

    async def reload_module(self, module: str) -> Message:
        return _first(await self.action({"Action": "Reload", "Module": module}))

    async def hangup(self, channel: str, cause: int = 16) -> Message:
        return _first(await self.action({"Action": "Hangup", "Channel": channel, "Cause": cause}))

    async def core_show_channels(self) -> list[dict[str, str]]:
        reply = await self.action({"Action": "CoreShowChannels"})
        items = reply if isinstance(reply, list) else []
        return [
            {k: v for k, v in item.items() if k != "content"}
            for item in items
            if str(item.get("Event", "")) == "CoreShowChannel"
        ]

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        timeout_ms: int = 30000,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Message:
        """Originate (Async) and wait for OriginateResponse; AmiError unless it succeeded."""
        act: dict[str, Any] = {"Action": "Originate", "Channel": channel, "Context": context}
        act.update(Exten=exten, Priority=str(priority), Timeout=str(timeout_ms), Async="true")
        if caller_id:
            act["CallerID"] = caller_id
        if variables:
            act["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        reply = await self.action(act, timeout=timeout_ms / 1000 + self._action_timeout)
        last = reply[-1] if isinstance(reply, list) else reply
        if str(last.get("Response", "")) != "Success":
            raise AmiError(f"Originate {channel} failed: reason {last.get('Reason', '?')}")
        return last


def _first(reply: Message | list[Message]) -> Message:
    return reply[0] if isinstance(reply, list) else reply
