"""Benchmark mode "pyst2": the classic per-call AGI script, as many Asterisk sites run one.

Asterisk forks a Python process for every call (``AGI(/path/to/script,...)`` on the decision's
Local channel, [cc-decide] in dialplan/cells.conf, with the daemon's arguments) and talks to it
over stdin and stdout, here through pyst2's
``asterisk.agi.AGI``. The process does what the daemon's ``cell-call`` route does, with the same
code: ``CellCallHandler`` (the PIN prompts, the decision, the CC_* variables) over an
``Authoriser`` and ``SqlCallStore`` on the same database, with the same settings. The imports,
the engine and the database connection are made afresh in every process: that is the per-call
cost being measured. The call's end is still settled by the daemon (cells.conf's hangup handler
reports it over FastAGI), so the daemon runs in this mode too.

Run by the wrapper that ``callcontrol_lab.bench.pyst2_root.prepare`` writes; ``main`` takes the
settings file it wrote (``--config``) and, with ``--timings FILE``, appends one line per call
(``timing_line``: where the process's time went).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from asterisk.agi import (
    AGI,
    AGIAppError,
    AGIException,
    AGIHangup,
    AGIUnknownError,
)
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import (
    BadCallArgs,
    CellCallHandler,
    PinPrompting,
    call_args,
)
from callcontrol.adapters.agi.protocol import AgiChannel, AgiError, AgiHangup, AgiReply
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.globals_store import SqlGlobals
from callcontrol.config import ConfigError, Settings, load_settings
from callcontrol.domain.model import Reason
from callcontrol.wiring import build_authoriser

_IMPORTED = time.perf_counter()

log = logging.getLogger("callcontrol_lab.bench.pyst2")

# Seconds to wait for a connection to PostgreSQL (the daemon's PG_CONNECT_TIMEOUT_S).
CONNECT_TIMEOUT_S = 10
# res_agi's "511 Command Not Permitted on a dead channel".
_DEAD_CHANNEL = 511


class Pyst2Channel(AgiChannel):
    """The channel that CellCallHandler drives, over pyst2's blocking stdin/stdout AGI.

    Only the transport differs from the daemon's: ``command`` goes through pyst2, and the
    commands built on it (GET DATA, SET VARIABLE) are the daemon's own, with the same quoting
    and the same reading of the replies. Blocking the event loop is fine: this process has one
    call. pyst2 waits for a reply as long as Asterisk takes; the handset's Dial S() in cells.conf
    bounds the whole conversation.
    """

    def __init__(self, agi: AGI) -> None:  # pyst2 owns the pipes: no reader or writer here
        self._agi = agi
        self._env = dict(agi.env)
        self._read_timeout = 0.0
        self._hung_up = False
        self._broken = ""
        self.first_sent: float | None = None  # time.perf_counter() of the first command
        self.last_digits: float | None = None  # of the last GET DATA's reply (the PIN keyed)

    async def command(self, text: str, *, reply_timeout: float | None = None) -> AgiReply:
        if "\n" in text or "\r" in text:
            raise AgiError("AGI command text cannot contain newlines")
        if self._hung_up:
            raise AgiHangup(f"channel {self.channel} already hung up")
        verb = text.split(" ", 1)[0]
        if self.first_sent is None:
            self.first_sent = time.perf_counter()
        try:
            result = self._agi.execute(text)
        except AGIHangup as e:  # SIGHUP, SIGPIPE, or "(hangup)" in the reply
            self._hung_up = True
            raise AgiHangup(f"{verb}: {e}") from e
        except AGIAppError:  # result=-1: what it means is the command's to say, as in the daemon
            return AgiReply(code=200, result="-1", data="", raw="200 result=-1")
        except AGIUnknownError as e:
            code = e.args[0] if e.args else 0
            if code in (0, _DEAD_CHANNEL):  # no reply (Asterisk closed the pipe), or 511
                self._hung_up = True
                raise AgiHangup(f"{verb}: channel gone ({code})") from e
            raise AgiError(f"AGI command {text!r} failed: {e}") from e
        except AGIException as e:  # 510 unknown command, 520 usage
            raise AgiError(f"AGI command {text!r} failed: {e}") from e
        except (OSError, ValueError) as e:  # pyst2 reads the end of its stdin as a bad number
            self._hung_up = True
            raise AgiHangup(f"{verb}: no reply: {e}") from e
        if verb == "GET":
            self.last_digits = time.perf_counter()
        value, data = result["result"]
        raw = f"200 result={value}" + (f" ({data})" if data else "")
        return AgiReply(code=200, result=value, data=data, raw=raw)


async def decide(channel: Pyst2Channel, settings: Settings) -> None:
    """One call, as the daemon's cell-call route decides it, on a database engine of its own."""
    engine = create_async_engine(settings.database.url, connect_args={"timeout": CONNECT_TIMEOUT_S})
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        store = SqlCallStore(sessions)
        prompting = PinPrompting(
            tries=settings.site.pin_tries_per_call, digits=settings.site.pin_digits
        )
        auth = build_authoriser(settings, store, SqlGlobals(sessions))
        await CellCallHandler(auth, prompting)(channel)
    finally:
        await engine.dispose()


def _refuse(agi: AGI) -> None:
    """Fail closed when the handler could not even be built: no allow is ever set."""
    try:
        agi.set_variable(cv.ANSWER, cv.answer(cv.REFUSE, Reason.INTERNAL_ERROR.value))
    except (AGIException, OSError):
        pass


def _call_uniqueid(channel: Pyst2Channel) -> str:
    """The handset's unique id (the call's, in call_decisions): the script runs on the
    decision's Local channel, whose own id is another; "" if the arguments are not right."""
    try:
        return call_args(channel.args).uniqueid
    except BadCallArgs:
        return ""


def timing_line(channel: Pyst2Channel, started: float, ended: float) -> str:
    """One call's timing in ms: total (the wrapper's first line to the end), imports, startup
    (to the first AGI command: imports, the AGI environment, the handset's lookup) and after_pin
    (the last GET DATA's reply to the end: the decision, storing it, the variables, the exit)."""

    def ms(start: float | None, end: float | None) -> str:
        return "-" if start is None or end is None else f"{(end - start) * 1000:.1f}"

    return (
        f"{_call_uniqueid(channel) or '-'} total={ms(started, ended)} "
        f"imports={ms(started, _IMPORTED)} "
        f"startup={ms(started, channel.first_sent)} after_pin={ms(channel.last_digits, ended)}\n"
    )


def _append(path: str, line: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except OSError as e:
        log.warning("could not write the timing to %s: %s", path, e)


def main(argv: list[str] | None = None, *, started: float | None = None) -> int:
    """The script: ``--config FILE`` (written by pyst2_root.prepare), optionally ``--timings
    FILE``; ``started`` is the wrapper's time.perf_counter() before its imports."""
    started = _IMPORTED if started is None else started
    parser = argparse.ArgumentParser(prog="cc-decide-pyst2", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--timings")
    args, _ = parser.parse_known_args(argv)  # Asterisk also passes the AGI arguments
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # pyst2 writes every line it reads and sends to stderr, which is Asterisk's own: not here.
    with open(os.devnull, "w", encoding="utf-8") as quiet:
        agi = AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=quiet)
        try:
            # The file is complete: Asterisk's environment must not change the decision.
            settings = load_settings(args.config, env={})
            settings.pin_secret()
        except ConfigError as e:
            log.error("cannot decide the call on %s: %s", agi.env.get("agi_channel", "?"), e)
            _refuse(agi)
            return 1
        channel = Pyst2Channel(agi)
        try:
            asyncio.run(decide(channel, settings))
        except Exception:  # the handler fails closed on its own; this is before or after it
            log.exception("deciding the call on %s failed", agi.env.get("agi_channel", "?"))
            _refuse(agi)
            return 1
    if args.timings:
        _append(args.timings, timing_line(channel, started, time.perf_counter()))
    return 0


def selfcheck() -> str:
    """What pyst2_root.prepare runs once in the Python that will run the script: every import,
    and the number metadata the decision reads. Returns the versions, for the log."""
    import phonenumbers
    import sqlalchemy

    from callcontrol.domain.numbers import normalise_dialled

    normalise_dialled("02079460000", "GB")
    return (
        f"python {sys.version.split()[0]}, SQLAlchemy {sqlalchemy.__version__}, "
        f"phonenumbers {phonenumbers.__version__}"
    )


if __name__ == "__main__":
    sys.exit(main())
