"""The FastAGI wire protocol: the environment block, command replies and one channel's commands.

Written from scratch instead of using panoramisk's FastAGI, which spins forever when Asterisk
closes the socket before the end of the environment, cannot run plain-function routes on
Python 3.11 and parses ``200 result= (timeout)`` as if nothing had happened.

Every read is bounded by a timeout and every reply is checked: anything Asterisk did not mean to
say becomes an exception, so a caller of this module fails closed.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

ENV_MAX_BYTES = 16384
_USAGE_END = "520 End of proper usage."
_USAGE_MAX_LINES = 200

_ENV_LINE = re.compile(r"(agi_[A-Za-z0-9_]+): ?(.*)")
_REPLY = re.compile(r"(\d{3})(?:([ -])(.*))?")
_RESULT = re.compile(r"result=(\S*)(?:\s+\((.*)\))?(.*)")
_DIGITS = re.compile(r"[0-9*#A-Da-d]*")
_SAFE_TOKEN = re.compile(r"[^\s\"'\\]+")
# Below 0x20 (tab, CR and NUL included) and DEL: no value Asterisk sends holds one, and each
# is a way to smuggle a line end, a truncation or a terminal escape into logs and records.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AgiError(Exception):
    """An AGI command failed, or Asterisk refused it."""


class AgiHangup(AgiError):
    """The channel hung up, Asterisk said HANGUP or 511, or closed the socket."""


class AgiProtocolError(AgiError):
    """Asterisk (or whoever is on the socket) sent garbage, too much, or nothing in time."""


@dataclass(frozen=True)
class AgiReply:
    code: int
    result: str  # "" when the reply has no result= (or an empty one)
    data: str  # the text in parentheses after the result, e.g. "timeout"
    raw: str

    @property
    def continues(self) -> bool:
        """True for the first line of a multi-line reply ("520-...")."""
        return len(self.raw) > 3 and self.raw[3] == "-"


def parse_reply(line: str) -> AgiReply:
    """Parse one reply line. Raises AgiHangup on "HANGUP", AgiProtocolError on anything else odd."""
    raw = line.rstrip("\r\n")
    if raw.strip() == "HANGUP":
        raise AgiHangup("Asterisk sent HANGUP")
    match = _REPLY.fullmatch(raw)
    if match is None:
        raise AgiProtocolError(f"unparsable AGI reply {raw[:120]!r}")
    code = int(match.group(1))
    rest = (match.group(3) or "").strip()
    result = data = ""
    found = _RESULT.match(rest)
    if found is not None:
        result, data = found.group(1), found.group(2) or ""
    elif code == 200:
        raise AgiProtocolError(f"AGI 200 reply without result= {raw[:120]!r}")
    return AgiReply(code=code, result=result, data=data, raw=raw)


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AgiProtocolError(f"AGI data is not UTF-8: {line[:60]!r}") from exc


async def _read_env_lines(reader: asyncio.StreamReader, max_bytes: int) -> dict[str, str]:
    env: dict[str, str] = {}
    total = 0
    for count in itertools.count():
        try:
            line = await reader.readline()
        except ValueError as exc:  # a single line longer than the stream's limit
            raise AgiProtocolError("AGI environment line too long") from exc
        total += len(line)
        if total > max_bytes:
            raise AgiProtocolError(f"AGI environment larger than {max_bytes} bytes")
        if not line.endswith(b"\n"):  # b"" or a partial line: the peer closed (EOF)
            raise AgiProtocolError("connection closed before the end of the AGI environment")
        try:
            # Asterisk ends each line with "\n" alone: a "\r" before it is part of the value
            # (a "%0D" in a dialled number), refused below, never taken for a line end.
            text = line.decode("utf-8")[:-1]
        except UnicodeDecodeError as exc:  # its text not shown: the line may hold the secret
            raise AgiProtocolError(f"AGI environment line {count + 1} is not UTF-8") from exc
        if text == "":
            return env
        key, value = _env_line(text)
        if key in env:
            # A second agi_arg_1 or agi_uniqueid must not quietly replace the first: whoever
            # wrote it is not Asterisk, or smuggled a line into a value Asterisk passed on.
            raise AgiProtocolError(f"AGI environment repeats {key}")
        env[key] = value


def _env_line(text: str) -> tuple[str, str]:
    """One "agi_xxx: value" line, its line end off: (key, value). No control characters."""
    match = _ENV_LINE.fullmatch(text)
    if match is None:
        shown = re.split(r"[:\s]", text, maxsplit=1)[0][:40]  # never a value: it may be secret
        raise AgiProtocolError(f"malformed AGI environment line starting {shown!r}")
    key, value = match.group(1), match.group(2)
    bad = _CONTROL.search(value)
    if bad is not None:
        raise AgiProtocolError(
            f"AGI environment {key} holds control character {ord(bad.group()):#04x}"
        )
    return key, value


async def read_environment(
    reader: asyncio.StreamReader,
    timeout: float,  # noqa: ASYNC109 - part of the documented API
    max_bytes: int = ENV_MAX_BYTES,
) -> dict[str, str]:
    """Read the "agi_xxx: value" lines up to the blank line ending them, within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_env_lines(reader, max_bytes)
    except TimeoutError as exc:
        raise AgiProtocolError(f"AGI environment not received within {timeout:g}s") from exc
    except ConnectionError as exc:
        raise AgiProtocolError(f"connection lost while reading the AGI environment: {exc}") from exc


def _quote(value: str) -> str:
    """Double-quote an argument the way res_agi's parser reads it back."""
    if "\n" in value or "\r" in value:
        raise AgiError("AGI arguments cannot contain newlines")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _token(value: str, what: str) -> str:
    if not _SAFE_TOKEN.fullmatch(value):
        raise AgiError(f"invalid AGI {what} {value!r}")
    return value


class AgiChannel:
    """One FastAGI conversation with Asterisk about one channel."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: Mapping[str, str],
        read_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._env = dict(env)
        self._read_timeout = read_timeout
        self._hung_up = False
        self._broken = ""  # after a protocol error the reply stream cannot be trusted

    @property
    def env(self) -> dict[str, str]:
        return dict(self._env)

    @property
    def script(self) -> str:
        return self._env.get("agi_network_script", "").lstrip("/")

    @property
    def args(self) -> list[str]:
        found: list[str] = []
        while f"agi_arg_{len(found) + 1}" in self._env:
            found.append(self._env[f"agi_arg_{len(found) + 1}"])
        return found

    @property
    def uniqueid(self) -> str:
        return self._env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self._env.get("agi_channel", "")

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    async def _read_line(self, wait_s: float) -> str:
        try:
            async with asyncio.timeout(wait_s):
                line = await self._reader.readline()
        except TimeoutError as exc:
            raise AgiProtocolError(f"no AGI reply within {wait_s:g}s") from exc
        except ValueError as exc:
            raise AgiProtocolError("AGI reply line too long") from exc
        except ConnectionError as exc:
            self._hung_up = True
            raise AgiHangup(f"AGI connection lost: {exc}") from exc
        if not line.endswith(b"\n"):
            self._hung_up = True
            raise AgiHangup("Asterisk closed the AGI connection")
        return _decode(line)

    async def _read_usage(self, first: AgiReply, wait_s: float) -> str:
        lines = [first.raw[4:]]
        for _ in range(_USAGE_MAX_LINES):
            line = (await self._read_line(wait_s)).rstrip("\r\n")
            if line.startswith(_USAGE_END):
                return "\n".join(lines)
            lines.append(line)
        raise AgiProtocolError("AGI 520 usage text did not end")

    async def command(self, text: str, *, reply_timeout: float | None = None) -> AgiReply:
        """Send one command and return its final reply (a 200).

        ``reply_timeout`` bounds the wait for each reply line (default: the read_timeout).
        """
        if "\n" in text or "\r" in text:
            raise AgiError("AGI command text cannot contain newlines")
        if self._hung_up:
            raise AgiHangup(f"channel {self.channel} already hung up")
        if self._broken:
            raise AgiProtocolError(f"AGI channel unusable after an earlier error: {self._broken}")
        wait = self._read_timeout if reply_timeout is None else reply_timeout
        try:
            return await self._exchange(text, wait)
        except AgiProtocolError as exc:
            self._broken = str(exc)  # a late reply would be taken for the next command's
            raise

    async def _exchange(self, text: str, wait: float) -> AgiReply:
        try:
            self._writer.write(text.encode("utf-8") + b"\n")
            await self._writer.drain()
        except ConnectionError as exc:
            self._hung_up = True
            raise AgiHangup(f"AGI connection lost: {exc}") from exc
        while True:
            try:
                reply = parse_reply(await self._read_line(wait))
            except AgiHangup:
                self._hung_up = True
                raise
            if reply.code != 100:  # "100 result=0 Trying..." precedes the real reply
                break
        if reply.code == 200:
            return reply
        if reply.code == 511:
            self._hung_up = True
            raise AgiHangup(f"{text.split(' ', 1)[0]}: dead channel ({reply.raw})")
        if reply.code == 520:
            usage = await self._read_usage(reply, wait) if reply.continues else reply.raw
            raise AgiError(f"AGI usage error for {text!r}: {usage}")
        if reply.code == 510:
            raise AgiError(f"AGI command unknown to Asterisk: {text!r}")
        raise AgiError(f"AGI command {text!r} failed: {reply.raw}")

    async def answer(self) -> AgiReply:
        reply = await self.command("ANSWER")
        if reply.result == "-1":
            self._hung_up = True
            raise AgiHangup("ANSWER failed: channel hung up")
        return reply

    async def set_variable(self, name: str, value: str) -> AgiReply:
        return await self.command(f"SET VARIABLE {_token(name, 'variable name')} {_quote(value)}")

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        """Play ``prompt`` and collect digits: returns (digits, timed_out).

        The reply wait allows the read_timeout (for the prompt) plus ``timeout_ms`` per digit.
        """
        wait = self._read_timeout + timeout_ms / 1000 * max(1, max_digits)
        text = f"GET DATA {_token(prompt, 'prompt')} {int(timeout_ms)} {int(max_digits)}"
        reply = await self.command(text, reply_timeout=wait)
        if reply.result == "-1" or reply.data == "hangup":
            self._hung_up = True
            raise AgiHangup("GET DATA: channel hung up")
        if not _DIGITS.fullmatch(reply.result):
            raise AgiProtocolError(f"GET DATA returned non-digits {reply.raw!r}")
        return reply.result, reply.data == "timeout"

    async def stream_file(
        self, name: str, escape_digits: str = "", *, reply_timeout: float | None = None
    ) -> str:
        """Play a sound file; returns the escape digit pressed, or "" if none.

        ``reply_timeout`` bounds the wait for the reply (default: read_timeout): long files need
        more.
        """
        if not _DIGITS.fullmatch(escape_digits):
            raise AgiError(f"invalid escape digits {escape_digits!r}")
        text = f"STREAM FILE {_token(name, 'file name')} {_quote(escape_digits)}"
        reply = await self.command(text, reply_timeout=reply_timeout)
        if reply.result == "-1":  # hangup, or the file could not be played
            self._hung_up = True
            raise AgiHangup(f"STREAM FILE {name}: channel hung up or file missing")
        try:
            code = int(reply.result)
        except ValueError as exc:
            raise AgiProtocolError(f"STREAM FILE returned {reply.raw!r}") from exc
        return chr(code) if code > 0 else ""

    async def verbose(self, message: str, level: int = 1) -> AgiReply:
        clean = " ".join(message.replace('"', "").replace("\\", "").split())
        return await self.command(f"VERBOSE {_quote(clean)} {min(max(int(level), 1), 4)}")

    async def hangup(self) -> AgiReply:
        reply = await self.command("HANGUP")
        self._hung_up = True  # nothing useful can follow; Asterisk may also send "HANGUP"
        return reply
