"""Unit tests of the FastAGI wire format: reply lines and the environment block."""

from __future__ import annotations

import asyncio

import pytest

from callcontrol.adapters.agi.protocol import (
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    parse_reply,
    read_environment,
)

from .agi_peer import env_bytes


@pytest.mark.parametrize(
    ("line", "code", "result", "data"),
    [
        ("200 result=1234", 200, "1234", ""),
        # defect 3: panoramisk reads this as "no input"; it is "no digits, then the timeout"
        ("200 result= (timeout)", 200, "", "timeout"),
        ("200 result=12 (timeout)", 200, "12", "timeout"),
        ("200 result=", 200, "", ""),
        ("200 result=-1", 200, "-1", ""),
        ("200 result=1 (some value (with) parens)\n", 200, "1", "some value (with) parens"),
        ("200 result=0 endpos=11520\r\n", 200, "0", ""),
        ("100 result=0 Trying...", 100, "0", ""),
        ("510 Invalid or unknown command", 510, "", ""),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "", ""),
        ("520-Invalid command syntax.  Proper usage follows:", 520, "", ""),
    ],
)
def test_parse_reply(line: str, code: int, result: str, data: str) -> None:
    reply = parse_reply(line)
    assert (reply.code, reply.result, reply.data) == (code, result, data)
    assert reply.raw == line.rstrip("\r\n")


def test_parse_reply_marks_multiline_usage() -> None:
    assert parse_reply("520-Invalid command syntax.").continues
    assert not parse_reply("520 Invalid command syntax.  Proper usage not available.").continues


def test_parse_reply_hangup() -> None:
    with pytest.raises(AgiHangup):
        parse_reply("HANGUP\n")


@pytest.mark.parametrize(
    "line", ["", "garbage", "20 result=1", "2000 result=1", "200 ok", "abc result=1", "200result=1"]
)
def test_parse_reply_rejects_garbage(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


def test_reply_is_frozen() -> None:
    reply = AgiReply(200, "1", "", "200 result=1")
    with pytest.raises(AttributeError):
        reply.code = 500  # type: ignore[misc]


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
async def test_read_environment(eol: str) -> None:
    env = await read_environment(_reader(env_bytes(eol=eol) + b"200 not read\n"), 1.0)
    assert env["agi_network_script"] == "cell-call"
    assert env["agi_arg_3"] == "abc@10.0.0.1"
    assert env["agi_accountcode"] == ""


@pytest.mark.parametrize(
    "data",
    [
        b"agi_network_script: x\nagi_channel: PJSIP/a\n",  # EOF before the blank line
        b"agi_network_script: x",  # EOF inside a line
        b"",
        b"hello world\n\n",
        b"foo: bar\n\n",
        b"agi_network_script x\n\n",
        b"agi_network_script: \xff\xfe\n\n",
    ],
)
async def test_read_environment_rejects(data: bytes) -> None:
    with pytest.raises(AgiProtocolError):
        await read_environment(_reader(data), 1.0)


async def test_read_environment_size_cap() -> None:
    data = b"".join(b"agi_x_%d: %s\n" % (i, b"a" * 100) for i in range(50)) + b"\n"
    assert len(data) > 4000
    with pytest.raises(AgiProtocolError, match="larger than 4000"):
        await read_environment(_reader(data), 1.0, max_bytes=4000)
    assert await read_environment(_reader(data), 1.0, max_bytes=len(data))


async def test_read_environment_timeout() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AgiProtocolError, match="within"):
        await read_environment(_reader(b"agi_network_script: x\n", eof=False), 0.1)
    assert loop.time() - started < 1.0
