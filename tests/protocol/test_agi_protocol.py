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


async def test_read_environment() -> None:
    env = await read_environment(_reader(env_bytes(secret=None) + b"200 not read\n"), 1.0)
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


# --- what Asterisk never sends: repeated keys, control characters, text that is not UTF-8 ----


def _env(*extra: str, args: tuple[str, ...] = ("cell-0101", "07700900123", "id@h")) -> bytes:
    return env_bytes(args=args, extra=extra)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        # a later agi_arg_1 or agi_uniqueid silently replaced the first
        (_env("agi_arg_1: cell-0999"), "repeats agi_arg_1"),
        (_env("agi_uniqueid: 1699999999.9"), "repeats agi_uniqueid"),
        (_env("agi_network_script: other-route"), "repeats agi_network_script"),
        (_env("agi_arg_3: id@h"), "repeats agi_arg_3"),  # even with the same value
        # control characters in a value (the line ends are the only ones allowed)
        (_env(args=("cell-0101", "0770\x00900123", "id@h")), "control character 0x00"),
        (_env(args=("cell-0101", "07700900123\r", "id@h")), "control character 0x0d"),
        (_env(args=("cell-0101", "0770\r0900123", "id@h")), "control character 0x0d"),
        (_env(args=("cell-0101", "07700\t900123", "id@h")), "control character 0x09"),
        (_env("agi_x: \x1b[2Jx"), "control character 0x1b"),
        (_env("agi_x: rub\x7fout"), "control character 0x7f"),
        (_env("agi_x: \x01"), "control character 0x01"),
        (_env("agi_x:\tname"), "control character 0x09"),
        # Asterisk ends its lines with "\n" alone: a CR is never a line end
        (env_bytes(eol="\r\n"), "control character 0x0d"),
        (env_bytes(eol="\r\r\n"), "control character 0x0d"),
        # not UTF-8: stray bytes, an overlong "/", a lone surrogate
        (_env("agi_x: caf\xe9").replace(b"caf\xc3\xa9", b"caf\xe9"), "not UTF-8"),
        (b"agi_network_script: \xc0\xafcell-call\n\n", "not UTF-8"),
        (b"agi_x: \xed\xa0\x80\n\n", "not UTF-8"),
    ],
)
async def test_read_environment_refuses_what_asterisk_never_sends(data: bytes, why: str) -> None:
    with pytest.raises(AgiProtocolError, match=why):
        await read_environment(_reader(data), 1.0)


async def test_read_environment_keeps_printable_unicode_and_empty_values() -> None:
    env = await read_environment(
        _reader(_env("agi_callername: Zoë Ørsted", "agi_rdnis: ", "agi_dnid:")), 1.0
    )
    assert env["agi_callername"] == "Zoë Ørsted"
    assert env["agi_rdnis"] == env["agi_dnid"] == ""
    assert env["agi_arg_2"] == "07700900123"


async def test_a_refusal_never_shows_a_value_that_may_hold_the_secret() -> None:
    secret_line = b"agi_request: agi://127.0.0.1/topsecretvalue/cell-call"
    for data in (
        secret_line + b"\x01\n\n",
        secret_line + b"\xff\n\n",
        b"agi_request agi://127.0.0.1/topsecretvalue/cell-call\n\n",
    ):
        with pytest.raises(AgiProtocolError) as refused:
            await read_environment(_reader(data), 1.0)
        assert "topsecretvalue" not in str(refused.value)
