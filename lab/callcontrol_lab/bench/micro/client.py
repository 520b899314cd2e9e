"""The client side: Asterisk, scripted. Each call's AGI requests, the agi_ environment, the
answers Asterisk gives, and the conversations played, in a process of their own or not."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import re
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace

from callcontrol import channel_vars as cv
from callcontrol_lab.bench.micro.provision import CONTACT_DIALLED, Inmate

CLIENT_TIMEOUT_S = 30.0  # one AGI conversation, as the client sees it

# One AGI request: (script, args, channel, uniqueid, context, extension, PIN to answer).
Request = tuple[str, tuple[str, ...], str, str, str, str, str]
# One conversation: (latency in seconds, the variables set, error text or "", the AGI commands
# the server sent: each one a round trip that, on a real Asterisk, waits for the channel).
Exchange = tuple[float, dict[str, str], str, int]


@dataclass(frozen=True)
class PhaseResult:
    wall_s: float
    exchanges: list[Exchange]
    client_cpu_s: float = 0.0  # CPU time the client process used (0 on the server's loop)


def environment(request: Request, port: int, secret: str) -> bytes:
    """The agi_ environment block Asterisk 22 sends for this request, the daemon's FastAGI
    secret first in the script's path as the rendered CC_AGI_URL puts it."""
    script, args, channel, uniqueid, context, extension, _pin = request
    caller = args[0] if script == cv.CELL_CALL_SCRIPT and args else "unknown"
    lines = [
        "agi_network: yes",
        f"agi_network_script: {secret}/{script}",
        f"agi_request: agi://127.0.0.1:{port}/{secret}/{script}",
        f"agi_channel: {channel}",
        "agi_language: en",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.0.0",
        f"agi_callerid: {caller}",
        "agi_calleridname: unknown",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {extension}",
        "agi_rdnis: unknown",
        f"agi_context: {context}",
        f"agi_extension: {extension}",
        "agi_priority: 9",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {140000000000000 + os.getpid()}",
    ]
    lines += [f"agi_arg_{i}: {value}" for i, value in enumerate(args, start=1)]
    return ("\n".join(lines) + "\n\n").encode()


def _unquote(value: str) -> str:
    """A SET VARIABLE value as res_agi reads it: double quotes off, backslash escapes undone."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def reply_to(command: str, pin: str, variables: dict[str, str]) -> bytes:
    """What Asterisk answers to ``command`` on a live channel (keeping the variables set)."""
    if command.startswith("GET DATA "):
        return f"200 result={pin}\n".encode()
    if command.startswith("SET VARIABLE "):
        name, _, value = command[len("SET VARIABLE ") :].partition(" ")
        variables[name] = _unquote(value)
        return b"200 result=1\n"
    if command == "HANGUP":
        return b"200 result=1\n"
    return b"200 result=0\n"  # STREAM FILE, EXEC, ANSWER, VERBOSE, ...


async def converse(
    port: int, request: Request, secret: str, timeout_s: float = CLIENT_TIMEOUT_S
) -> Exchange:
    """One AGI request from connect to the server's close; never raises."""
    variables: dict[str, str] = {}
    commands = 0
    started = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(environment(request, port, secret))
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):  # EOF: the server closed, the AGI is over
                    break
                commands += 1
                writer.write(reply_to(line.decode().rstrip("\r\n"), request[6], variables))
                await writer.drain()
        return time.perf_counter() - started, variables, "", commands
    except TimeoutError:
        took = time.perf_counter() - started
        return took, variables, f"no close within {timeout_s:g}s", commands
    except (OSError, ValueError) as e:  # ValueError: undecodable or overlong lines
        return time.perf_counter() - started, variables, f"{type(e).__name__}: {e}", commands
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def play(
    port: int, requests: Sequence[Request], concurrency: int, secret: str
) -> PhaseResult:
    """Play ``requests`` with ``concurrency`` calls at a time; results in request order."""
    results: list[Exchange | None] = [None] * len(requests)
    queue = iter(range(len(requests)))

    async def worker() -> None:
        for i in queue:
            results[i] = await converse(port, requests[i], secret)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(requests))))))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return PhaseResult(wall, [r for r in results if r is not None], cpu)


def play_in_process(
    port: int, requests: Sequence[Request], concurrency: int, secret: str
) -> PhaseResult:
    """``play`` on an event loop of its own (the entry point of the client process)."""
    return asyncio.run(play(port, requests, concurrency, secret))


class Client:
    """Plays the requests in a separate process (the default) or on the server's own loop."""

    def __init__(self, separate_process: bool) -> None:
        self._pool: Executor | None = None
        if separate_process:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)

    async def play(
        self, port: int, requests: Sequence[Request], concurrency: int, secret: str
    ) -> PhaseResult:
        """Play the requests: in the client process, or here on the server's own loop.
        ``secret``: the server's FastAGI secret, which every request presents."""
        if not requests:
            return PhaseResult(0.0, [])
        if self._pool is None:  # its CPU is the server process's: not told apart
            return replace(await play(port, requests, concurrency, secret), client_cpu_s=0.0)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, play_in_process, port, list(requests), concurrency, secret
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


# --- the calls: each one's AGI requests -------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class _Calls:
    """Makes each call's AGI requests, with a channel and uniqueid of its own."""

    talk_seconds: int
    pin_answer: str | None
    base: int = field(default_factory=lambda: int(time.time()))
    seq: int = 0

    def decide(self, inmate: Inmate) -> Request:
        self.seq += 1
        channel = f"PJSIP/{inmate.cell}-{self.seq:08x}"
        uniqueid = f"{self.base}.{self.seq}"
        call_id = f"{uuid.uuid4().hex}@127.0.0.1"
        # As [cc-decide] in dialplan/cells.conf sends them: all but the unique id base64.
        args = (_b64(inmate.cell), _b64(CONTACT_DIALLED), _b64(call_id), uniqueid, _b64(channel))
        pin = inmate.pin if self.pin_answer is None else self.pin_answer
        return (cv.CELL_CALL_SCRIPT, args, channel, uniqueid, "cells", CONTACT_DIALLED, pin)

    def end(self, decided: Request) -> Request:
        """The hangup handler's request ([cc-call-end]): accepted, talked, the caller hung up."""
        channel, uniqueid = decided[2], decided[3]
        ended = time.time()
        if self.talk_seconds > 0:
            accepted, status = f"{ended - self.talk_seconds:.3f}", "ANSWER"
        else:
            accepted, status = "", "NOANSWER"
        args = (uniqueid, accepted, f"{ended:.3f}", status, "16", channel)
        return (cv.CALL_END_SCRIPT, args, channel, uniqueid, "cc-call-end", "s", "")
