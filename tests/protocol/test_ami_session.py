"""AmiSession against a scripted AMI server: login, actions, drops, restarts and garbage."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from callcontrol.adapters.ami.session import (
    AmiActionLost,
    AmiActionTimeout,
    AmiError,
    AmiSession,
    AmiUnavailable,
)

from .ami_peer import ScriptedAmi, channel_row, frame
from .helpers import eventually

MakeSession = Callable[..., Awaitable[AmiSession]]


@pytest.fixture
async def make_session(ami: ScriptedAmi) -> AsyncIterator[MakeSession]:
    sessions: list[AmiSession] = []

    async def make(start: bool = True, **kwargs: Any) -> AmiSession:
        kwargs.setdefault("reconnect_s", 0.05)
        kwargs.setdefault("action_timeout", 1.0)
        kwargs.setdefault("ping_interval", 30)
        secret = kwargs.pop("secret", ami.secret)
        session = AmiSession("127.0.0.1", ami.port, ami.username, secret, **kwargs)
        sessions.append(session)
        if start:
            await session.start()
            await session.wait_connected(2.0)
        return session

    yield make
    for session in sessions:
        await session.stop()


async def test_login_and_round_trips(ami: ScriptedAmi, make_session: MakeSession) -> None:
    ami.channels = [channel_row("1700000000.1", "PJSIP/cell-0101-00000001")]
    session = await make_session()
    assert session.connected
    login = ami.actions[0]
    assert (login["Action"], login["Username"], login["Secret"]) == (
        "Login",
        "callcontrol",
        "s3cret",
    )
    pong = await session.action({"Action": "Ping"})
    assert pong["Ping"] == "Pong"
    assert await session.command("core show uptime") == "ran: core show uptime\nsecond line"
    assert (await session.reload_module("res_pjsip.so")).message == "Module Reloaded"
    rows = await session.core_show_channels()
    assert rows == [
        {"Event": "CoreShowChannel", "ActionID": rows[0]["ActionID"], **ami.channels[0]}
    ]
    assert (await session.hangup("PJSIP/cell-0101-00000001")).message == "Channel Hungup"
    assert ami.actions[-1]["Cause"] == "16"
    done = await session.originate("Local/1@test", context="out", exten="1", caller_id="cc")
    assert done["Reason"] == "4"


async def test_error_responses_raise(ami: ScriptedAmi, make_session: MakeSession) -> None:
    session = await make_session()
    with pytest.raises(AmiError, match="No such channel"):
        await session.hangup("PJSIP/nobody-00000001")
    with pytest.raises(AmiError, match="No such module"):
        await session.reload_module("res_nothing.so")
    with pytest.raises(AmiError, match="reason 5"):
        await session.originate("Local/1@test", context="out", exten="busy")
    ami.channels = []
    assert await session.core_show_channels() == []
    assert session.connected  # errors are answers, not faults


async def test_not_connected_raises_unavailable(
    ami: ScriptedAmi, make_session: MakeSession
) -> None:
    session = await make_session(start=False)
    with pytest.raises(AmiUnavailable):
        await session.action({"Action": "Ping"})
    with pytest.raises(AmiUnavailable):
        await session.wait_connected(0.05)
    assert ami.connections == 0


async def test_bad_login_keeps_retrying(
    ami: ScriptedAmi, make_session: MakeSession, caplog: pytest.LogCaptureFixture
) -> None:
    connected: list[int] = []
    session = await make_session(start=False, secret="wrong")
    session.on_connected(lambda: connected.append(1))
    await session.start()
    await eventually(lambda: ami.login_attempts >= 3)
    assert not session.connected and connected == []
    assert "AMI login refused for user callcontrol" in caplog.text
    ami.secret = "wrong"  # the operator fixes the password on the Asterisk side
    await session.wait_connected(2.0)
    assert connected == [1]
    assert (await session.action({"Action": "Ping"}))["Ping"] == "Pong"


async def test_pending_hangup_lost_on_drop_and_never_resent(
    ami: ScriptedAmi, make_session: MakeSession
) -> None:
    """Defect 4: panoramisk queues unanswered actions and resends them on FullyBooted."""
    connected: list[int] = []
    session = await make_session(start=False, action_timeout=3.0)
    session.on_connected(lambda: connected.append(1))
    await session.start()
    await eventually(lambda: connected == [1])
    ami.silent.add("hangup")
    pending = asyncio.create_task(session.hangup("PJSIP/cell-0101-00000001"))
    await eventually(lambda: ami.count("Hangup") == 1)
    await ami.drop_connections()
    with pytest.raises(AmiActionLost):
        await asyncio.wait_for(pending, 1.0)
    ami.silent.clear()
    await eventually(lambda: connected == [1, 1] and session.connected)
    # FullyBooted came right after the second login; a round trip after it shows no resend
    await session.action({"Action": "Ping"})
    await asyncio.sleep(0.1)
    assert ami.count("Hangup") == 1
    assert ami.logins == 2


async def test_reconnects_after_server_restart(ami: ScriptedAmi, make_session: MakeSession) -> None:
    connected: list[int] = []
    session = await make_session(start=False)
    session.on_connected(lambda: connected.append(1))
    await session.start()
    await eventually(lambda: connected == [1])
    await ami.stop()
    await eventually(lambda: not session.connected)
    with pytest.raises(AmiUnavailable):
        await session.action({"Action": "Ping"})
    await asyncio.sleep(0.2)  # several refused reconnect attempts
    await ami.start()  # same port
    await eventually(lambda: connected == [1, 1] and session.connected)
    assert (await session.action({"Action": "Ping"}))["Ping"] == "Pong"


async def test_async_callback_tasks_are_held_until_done(
    ami: ScriptedAmi, make_session: MakeSession
) -> None:
    """Defect 5: panoramisk's dispatch drops its ensure_future task; the loop holds weak refs."""
    gate = asyncio.Event()
    done: list[str] = []

    async def slow(event: Any) -> None:
        await gate.wait()
        done.append(event["Uniqueid"])

    session = await make_session()
    session.on("Custom*", slow)
    await ami.send_event({"Event": "CustomThing", "Uniqueid": "42"})
    await eventually(lambda: len(session.callback_tasks) == 1)
    gc.collect()
    (task,) = session.callback_tasks
    assert not task.done()
    gate.set()
    await eventually(lambda: done == ["42"])
    await eventually(lambda: not session.callback_tasks)


async def test_callback_failures_are_logged_not_fatal(
    ami: ScriptedAmi, make_session: MakeSession, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(event: Any) -> None:
        raise ValueError("sync boom")

    async def broken_async(event: Any) -> None:
        raise ValueError("async boom")

    session = await make_session()
    session.on("Test*", broken)
    session.on("Test*", broken_async)
    session.on("Test*", lambda event: seen.append(event["Seq"]))
    for seq in ("1", "2"):
        await ami.send_event({"Event": "TestEvent", "Seq": seq})
    await eventually(lambda: seen == ["1", "2"])
    await eventually(lambda: "async boom" in caplog.text)
    assert "sync boom" in caplog.text
    assert session.connected and ami.connections == 1


async def test_garbage_on_the_socket_does_not_kill_the_session(
    ami: ScriptedAmi, make_session: MakeSession, caplog: pytest.LogCaptureFixture
) -> None:
    names: list[str] = []
    session = await make_session()
    session.on("Newchannel", lambda event: names.append(event["CallerIDName"]))
    await ami.send_raw(b"\xff\xfe\x00\x81garbage\r\n\r\n")
    await ami.send_raw(b"no colon here\r\nnor here\r\n\r\n")
    await ami.send_raw(b"Event: A\r\nEvent: B\r\n\r\n")  # panoramisk: list.lower() -> crash
    await ami.send_raw(frame({"Response": "Success", "ActionID": "nobody-asked"}))
    # a UTF-8 character split across two TCP segments must survive
    payload = frame({"Event": "Newchannel", "CallerIDName": "Zoë", "Uniqueid": "9"})
    cut = payload.index("ë".encode()) + 1
    await ami.send_raw(payload[:cut])
    await asyncio.sleep(0.05)
    await ami.send_raw(payload[cut:])
    await eventually(lambda: names == ["Zoë"])
    assert (await session.action({"Action": "Ping"}))["Ping"] == "Pong"
    assert session.connected and ami.connections == 1
    assert "AMI: ignoring" in caplog.text


async def test_action_timeout(ami: ScriptedAmi, make_session: MakeSession) -> None:
    session = await make_session(action_timeout=0.2)
    ami.silent.add("hangup")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiActionTimeout) as caught:
        await session.hangup("PJSIP/cell-0101-00000001")
    assert 0.15 < loop.time() - started < 1.0
    assert isinstance(caught.value, AmiActionLost) and isinstance(caught.value, TimeoutError)
    late_id = ami.actions[-1]["ActionID"]
    await ami.send_raw(frame({"Response": "Success", "ActionID": late_id}))  # too late: dropped
    with pytest.raises(AmiActionTimeout):
        await session.hangup("PJSIP/cell-0101-00000001", cause=21)
    assert session.connected and ami.count("Hangup") == 2
    assert (await session.action({"Action": "Ping"}, timeout=0.5))["Ping"] == "Pong"


async def test_unanswered_ping_drops_and_reconnects(
    ami: ScriptedAmi, make_session: MakeSession, caplog: pytest.LogCaptureFixture
) -> None:
    await make_session(ping_interval=0.05, action_timeout=0.1)
    ami.silent.add("ping")
    await eventually(lambda: ami.connections >= 2 and ami.logins >= 2)
    assert "ping unanswered" in caplog.text


async def test_shutdown_event_reconnects(ami: ScriptedAmi, make_session: MakeSession) -> None:
    session = await make_session()
    await ami.send_event({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"})
    await eventually(lambda: ami.logins == 2 and session.connected)


async def test_stop_fails_pending_and_never_reconnects(
    ami: ScriptedAmi, make_session: MakeSession
) -> None:
    session = await make_session(action_timeout=3.0)
    ami.silent.add("hangup")
    pending = asyncio.create_task(session.hangup("PJSIP/cell-0101-00000001"))
    await eventually(lambda: ami.count("Hangup") == 1)
    await session.stop()
    with pytest.raises(AmiActionLost):
        await asyncio.wait_for(pending, 1.0)
    assert not session.connected
    await asyncio.sleep(0.2)  # four reconnect delays
    assert ami.connections == 1
    with pytest.raises(AmiUnavailable):
        await session.action({"Action": "Ping"})
