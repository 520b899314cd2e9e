"""FastAgiServer against a scripted Asterisk: the edge cases a real Asterisk will not make."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from callcontrol.adapters.agi.protocol import AgiChannel, AgiError, AgiHangup, AgiProtocolError

from .agi_peer import CHANNEL, UNIQUEID, MakeServer, ScriptedAsterisk, fastagi_servers
from .helpers import eventually


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    async with fastagi_servers(read_timeout=1.0, session_timeout=3.0) as make:
        yield make


async def test_normal_conversation(make_server: MakeServer) -> None:
    seen: dict[str, Any] = {}

    async def route(chan: AgiChannel) -> None:
        seen.update(script=chan.script, args=chan.args, uid=chan.uniqueid, channel=chan.channel)
        await chan.answer()
        seen["digits"] = await chan.get_data("enter-pin", 3000, 4)
        seen["set"] = await chan.set_variable("CC_ANSWER", 'al"l\\ow')
        await chan.verbose('said "hello"\nthere', level=9)

    server = await make_server({"/cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    assert await peer.command() == "ANSWER"
    await peer.reply("200 result=0")
    assert await peer.command() == "GET DATA enter-pin 3000 4"
    await peer.reply("200 result=1234")
    assert await peer.command() == 'SET VARIABLE CC_ANSWER "al\\"l\\\\ow"'
    await peer.reply("200 result=1")
    assert await peer.command() == 'VERBOSE "said hello there" 4'
    await peer.reply("200 result=1")
    assert await peer.expect_eof() == b""
    assert seen["script"] == "cell-call"
    assert seen["args"] == ["cell-0101", "07700900123", "abc@10.0.0.1"]
    assert (seen["uid"], seen["channel"]) == (UNIQUEID, CHANNEL)
    assert seen["digits"] == ("1234", False)
    assert seen["set"].result == "1"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # defect 3: "no digits then timeout" and "partial digits then timeout" are told apart
        ("200 result= (timeout)", ("", True)),
        ("200 result=12 (timeout)", ("12", True)),
        ("200 result=1234", ("1234", False)),
        ("200 result=", ("", False)),
        ("200 result=-1", AgiHangup),
        ("HANGUP", AgiHangup),
        ("511 Command Not Permitted on a dead channel or intercept routine", AgiHangup),
        ("510 Invalid or unknown command", AgiError),
        ("200 result=12x4", AgiProtocolError),
        ("blah", AgiProtocolError),
    ],
)
async def test_get_data_replies(make_server: MakeServer, reply: str, expected: Any) -> None:
    outcome: list[Any] = []

    async def route(chan: AgiChannel) -> None:
        try:
            outcome.append(await chan.get_data("enter-pin", 100, 4))
        except AgiError as exc:
            outcome.append(exc)

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    await peer.command()
    await peer.reply(reply)
    await peer.expect_eof()
    if isinstance(expected, tuple):
        assert outcome == [expected]
    else:
        assert type(outcome[0]) is expected


async def test_trying_lines_are_skipped(make_server: MakeServer) -> None:
    got: list[str] = []

    async def route(chan: AgiChannel) -> None:
        got.append((await chan.answer()).raw)

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    await peer.command()
    await peer.reply("100 result=0 Trying...", "200 result=0")
    await peer.expect_eof()
    assert got == ["200 result=0"]


async def test_usage_error_then_next_command_stays_in_step(make_server: MakeServer) -> None:
    got: list[Any] = []

    async def route(chan: AgiChannel) -> None:
        try:
            await chan.command("GET DATA")
        except AgiError as exc:
            got.append(exc)
        got.append(await chan.verbose("after usage"))

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    assert await peer.command() == "GET DATA"
    await peer.reply(
        "520-Invalid command syntax.  Proper usage follows:",
        "Usage: GET DATA <file to be streamed> [timeout] [maxdigits]",
        " Stream the given file, and receive DTMF data.",
        "520 End of proper usage.",
    )
    assert await peer.command() == 'VERBOSE "after usage" 1'
    await peer.reply("200 result=1")
    await peer.expect_eof()
    assert type(got[0]) is AgiError and "Usage: GET DATA" in str(got[0])
    assert got[1].result == "1"


async def test_hangup_line_then_commands_fail_without_writing(make_server: MakeServer) -> None:
    got: list[Any] = []

    async def route(chan: AgiChannel) -> None:
        for _ in range(2):
            try:
                await chan.stream_file("hello", "#")
            except AgiHangup as exc:
                got.append(exc)
        got.append(chan.hung_up)

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    assert await peer.command() == 'STREAM FILE hello "#"'
    await peer.reply("HANGUP")
    assert await peer.expect_eof() == b""  # the second command was never written
    assert [type(g) for g in got[:2]] == [AgiHangup, AgiHangup] and got[2] is True


async def test_stream_file_returns_escape_digit(make_server: MakeServer) -> None:
    got: list[str] = []

    async def route(chan: AgiChannel) -> None:
        got.append(await chan.stream_file("hello", "#1"))
        got.append(await chan.stream_file("hello"))

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    await peer.command()
    await peer.reply("200 result=35 endpos=1200")
    assert await peer.command() == 'STREAM FILE hello ""'
    await peer.reply("200 result=0 endpos=8000")
    await peer.expect_eof()
    assert got == ["#", ""]


async def test_peer_closes_during_command(make_server: MakeServer) -> None:
    got: list[Any] = []

    async def route(chan: AgiChannel) -> None:
        await chan.answer()
        try:
            await chan.get_data("enter-pin", 5000, 4)
        except AgiError as exc:
            got.append(exc)

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    await peer.command()
    await peer.reply("200 result=0")
    await peer.command()
    peer.close()
    await eventually(lambda: bool(got))
    assert type(got[0]) is AgiHangup


async def test_reply_timeout_is_a_protocol_error(make_server: MakeServer) -> None:
    got: list[Any] = []

    async def route(chan: AgiChannel) -> None:
        for _ in range(2):
            try:
                await chan.answer()
            except AgiError as exc:
                got.append(exc)

    server = await make_server({"cell-call": route}, read_timeout=0.2)
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    assert await peer.command() == "ANSWER"
    await asyncio.sleep(0.3)
    await peer.reply("200 result=0")  # too late: must not be read as the next command's reply
    assert await peer.expect_eof() == b""  # and no second command was written
    assert [type(g) for g in got] == [AgiProtocolError, AgiProtocolError]
    assert "unusable" in str(got[1])


async def test_command_text_with_newline_is_refused(make_server: MakeServer) -> None:
    got: list[Any] = []

    async def route(chan: AgiChannel) -> None:
        for bad in ("EXEC Dial x\nHANGUP", "EXEC Wait 1\r"):
            with pytest.raises(AgiError):
                await chan.command(bad)
        with pytest.raises(AgiError):
            await chan.set_variable("CC_X", "a\nANSWER")
        with pytest.raises(AgiError):
            await chan.set_variable("CC X", "1")
        got.append("done")

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    assert await peer.expect_eof() == b""  # nothing at all was written
    assert got == ["done"]


async def test_sync_route(make_server: MakeServer) -> None:
    """Defect 2: panoramisk wraps plain functions with asyncio.coroutine (gone in 3.11)."""
    calls: list[str] = []

    def plain(chan: AgiChannel) -> None:
        calls.append(chan.script)

    def returns_coroutine(chan: AgiChannel) -> Awaitable[Any]:
        calls.append(chan.script)
        return chan.answer()

    server = await make_server({"plain": plain, "coro": returns_coroutine})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env("plain")
    assert await peer.expect_eof() == b""
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env("coro")
    assert await peer.command() == "ANSWER"
    await peer.reply("200 result=0")
    await peer.expect_eof()
    assert calls == ["plain", "coro"]


async def test_unknown_route_closed_without_reply(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server({"cell-call": lambda chan: None})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env("no-such-script")
    assert await peer.expect_eof() == b""
    assert "no route for 'no-such-script'" in caplog.text
    assert CHANNEL in caplog.text


async def test_route_exception_logged_with_channel(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def route(chan: AgiChannel) -> None:
        raise RuntimeError("boom in route")

    server = await make_server({"cell-call": route})
    peer = await ScriptedAsterisk.connect(server.port)
    await peer.send_env()
    assert await peer.expect_eof() == b""
    record = next(r for r in caplog.records if r.name == "callcontrol.agi" and r.exc_info)
    assert CHANNEL in record.getMessage() and "boom in route" in caplog.text
    await eventually(lambda: server.active_sessions == 0)
