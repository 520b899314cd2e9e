"""Running the load: the called party's and the handsets' SIPp at the planned rate, a progress
line every second, and CPU and memory of Asterisk and the daemon sampled meanwhile."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from callcontrol_lab.measure import process_stat
from callcontrol_lab.simulator import logs
from callcontrol_lab.simulator.call import Endpoints
from callcontrol_lab.simulator.load.plan import LoadPlan
from callcontrol_lab.simulator.processes import start, stop, tail, until_listening, wait
from callcontrol_lab.simulator.sipp import (
    RunDir,
    SimError,
    called_party_command,
    find_sipp,
    handset_command,
    stage_scenario,
)

log = logging.getLogger("callcontrol.sim.load")


# --- CPU and memory ----------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the epoch
    cpu_pct: float  # of one core, since the previous sample
    rss_mb: float


@dataclass
class ProcWatch:
    """One process's CPU and memory, sampled by ``sample()``."""

    name: str
    pid: int | None
    samples: list[Sample] = field(default_factory=list)
    _first: tuple[float, float] | None = None
    _last: tuple[float, float] | None = None

    @property
    def cpu_s(self) -> float | None:
        """CPU seconds spent between the first and the last sample (None before two)."""
        if self._first is None or self._last is None or self._last is self._first:
            return None
        return self._last[1] - self._first[1]

    def sample(self, now: float) -> None:
        if self.pid is None:
            return
        # Its own CPU and that of the children it waited for (Asterisk's per-call AGI scripts,
        # the daemon's ffmpeg): their work too.
        stat = process_stat(self.pid, memory=True)
        if stat is None:
            return
        if self._last is not None and now > self._last[0]:
            cpu = (stat.cpu_s - self._last[1]) / (now - self._last[0]) * 100
            self.samples.append(Sample(now, round(cpu, 1), round(stat.rss_kb / 1024, 1)))
        self._last = (now, stat.cpu_s)
        if self._first is None:
            self._first = self._last


def pid_listening(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` (the daemon's FastAGI), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid_dir.name)
        except OSError:
            continue
    return None


# --- progress ----------------------------------------------------------------------------------


@dataclass
class Progress:
    at: float
    elapsed_s: float
    placed: int
    connected: int  # the called party keyed its accept digit
    refused: int  # Asterisk hung up before the called party got an INVITE (daemon refused)
    failed: int  # SIPp's failed calls
    ended: int
    concurrent: int  # handset calls up now (SIPp's current calls)

    def line(self, total: int) -> str:
        return (
            f"[{self.elapsed_s:5.0f}s] placed {self.placed}/{total}  connected {self.connected}  "
            f"refused {self.refused}  failed {self.failed}  now {self.concurrent}"
        )


class _Tail:
    """Reads what a growing file has gained since the last read (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.rest = ""

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("r", errors="replace") as f:
                f.seek(self.pos)
                chunk = f.read()
                self.pos = f.tell()
        except OSError:
            return []
        text = self.rest + chunk
        lines = text.split("\n")
        self.rest = lines.pop()
        return lines


@dataclass
class _Counter:
    handset: _Tail
    called: _Tail
    stats: Path
    invited: set[str] = field(default_factory=set)  # handset calls whose called party was invited
    placed: int = 0
    connected: int = 0
    ended: set[str] = field(default_factory=set)
    refused: int = 0

    def update(self, started: float, now: float) -> Progress:
        for e in logs.parse_events("\n".join(self.called.new_lines())):
            if e.event == "invite" and e.data:
                self.invited.add(e.data)
            elif e.event == "dtmf":
                self.connected += 1
        for e in logs.parse_events("\n".join(self.handset.new_lines())):
            if e.event == "invite":
                self.placed += 1
            elif e.event in ("end", "rejected") and e.call_id not in self.ended:
                self.ended.add(e.call_id)
                if e.call_id not in self.invited:
                    self.refused += 1
        current, failed = sipp_stats(self.stats)
        concurrent = current if current is not None else self.placed - len(self.ended)
        return Progress(
            at=now,
            elapsed_s=now - started,
            placed=self.placed,
            connected=self.connected,
            refused=self.refused,
            failed=failed or 0,
            ended=len(self.ended),
            concurrent=concurrent,
        )


def sipp_stats(path: Path) -> tuple[int | None, int | None]:
    """(current calls, failed calls so far) from the last line of SIPp's -trace_stat file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None, None
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=";") if r]
    if len(rows) < 2:
        return None, None
    head, last = rows[0], rows[-1]

    def value(name: str) -> int | None:
        try:
            return int(last[head.index(name)])
        except (ValueError, IndexError):
            return None

    return value("CurrentCall"), value("FailedCall(C)")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class RunOutput:
    run: RunDir
    call_id_prefix: str
    started_at: float
    ended_at: float
    progress: list[Progress]
    watches: list[ProcWatch]
    handset_exit: int | None
    spooled: set[str] = field(default_factory=set)  # file names seen in the recordings spool


def rate_options(rate: float) -> list[str]:
    """SIPp's -r (calls) per -rp (milliseconds) for ``rate`` calls per second."""
    f = Fraction(rate).limit_denominator(1000)
    return ["-r", str(f.numerator), "-rp", str(f.denominator * 1000)]


async def run_load(
    plan: LoadPlan,
    passwords: dict[str, str],
    ep: Endpoints,
    *,
    accept_digit: str,
    watch: dict[str, int | None],
    on_progress: Callable[[Progress], None] | None = None,
    prefix: list[str] | None = None,
    run: RunDir | None = None,
    spool: Path | None = None,
) -> RunOutput:
    """Place every call of ``plan`` through SIPp at the plan's rate; stop both SIPps.

    ``spool``: the recordings spool, listed every second (what was recorded, even if it is
    deleted before the end: the privileged calls' audio must never appear there)."""
    prefix = prefix or find_sipp()
    run = run or RunDir.create(prefix, "callcontrol-load-")
    handset_xml = stage_scenario(run, "handset.xml")
    cp_xml = stage_scenario(run, "called_party.xml")
    logs.write_injection(
        run.h("handset.csv"),
        [c.handset_call(passwords[c.cell.name], plan.timing) for c in plan.calls],
    )
    cid_prefix = f"ccload-{os.getpid()}-{int(time.time())}-"
    decline = "1" if accept_digit == "2" else "2"
    cp_cmd = called_party_command(
        prefix,
        run,
        cp_xml,
        ip=ep.local_ip,
        port=ep.called_party_port,
        media_port=ep.called_party_media_port,
        mode="by_number",
        accept_ms=round(plan.timing.accept_after_s * 1000),
        accept_digit=accept_digit,
        decline_digit=decline,
        dtmf_ms=plan.timing.dtmf_ms,
        calls=0,
    )
    cp_cmd += ["-trace_stat", "-stf", run.s("called_party_stats.csv"), "-fd", "1"]
    total = len(plan.calls)
    limit = max(1, len(plan.cells))
    hs_cmd = handset_command(
        prefix,
        run,
        handset_xml,
        run.s("handset.csv"),
        host=ep.host,
        port=ep.port,
        ip=ep.local_ip,
        local_port=ep.local_port,
        media_port=ep.media_port,
        call_id_prefix=cid_prefix,
        calls=total,
        extra=[
            *rate_options(plan.rate),
            "-l", str(limit),
            "-trace_stat", "-stf", run.s("handset_stats.csv"), "-fd", "1",
        ],
    )  # fmt: skip
    watches = [ProcWatch(name, pid) for name, pid in watch.items()]
    longest = max((plan.timing.occupancy_s(c.kind, len(c.cell.pin)) for c in plan.calls), default=0)
    limit_s = total / plan.rate + longest + 120
    counter = _Counter(
        _Tail(run.h("handset_logs.log")),
        _Tail(run.h("called_party_logs.log")),
        run.h("handset_stats.csv"),
    )
    progress: list[Progress] = []
    spooled: set[str] = set()
    cp_proc = hs_proc = None
    started = time.time()
    code: int | None = None
    try:
        cp_proc = await start(cp_cmd, run.h("called_party.out"))
        await until_listening(cp_proc, ep.local_ip, ep.called_party_port, run.h("called_party.out"))
        started = time.time()
        hs_proc = await start(hs_cmd, run.h("handset.out"))
        deadline = time.monotonic() + limit_s
        while True:
            code = await wait(hs_proc, 1.0)
            now = time.time()
            for w in watches:
                w.sample(now)
            spooled.update(list_spool(spool))
            p = counter.update(started, now)
            progress.append(p)
            if on_progress:
                on_progress(p)
            if code is not None:
                break
            if cp_proc.returncode is not None:
                raise SimError(f"the called party's SIPp died: {tail(run.h('called_party.out'))}")
            if time.monotonic() > deadline:
                raise SimError(f"the load did not finish within {limit_s:.0f} s")
        if code not in (0, 1):
            raise SimError(f"the handsets' SIPp failed (exit {code}): {tail(run.h('handset.out'))}")
        # The called party's last calls end with the handsets' (Asterisk's BYE or CANCEL).
        end_by = time.monotonic() + 15
        while time.monotonic() < end_by:
            spooled.update(list_spool(spool))
            current, _ = sipp_stats(run.h("called_party_stats.csv"))
            if not current:
                break
            await asyncio.sleep(0.5)
        return RunOutput(run, cid_prefix, started, time.time(), progress, watches, code, spooled)
    finally:
        if hs_proc is not None and hs_proc.returncode is None:
            await stop(hs_proc)
        if cp_proc is not None and cp_proc.returncode is None:
            await stop(cp_proc)


def list_spool(spool: Path | None) -> list[str]:
    if spool is None:
        return []
    try:
        return os.listdir(spool)
    except OSError:
        return []


def print_progress(total: int) -> Callable[[Progress], None]:
    """A progress printer for a terminal (one line, rewritten) or a log (a line every 5 s)."""
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(p: Progress) -> None:
        if tty:
            print("\r" + p.line(total), end="", file=sys.stderr, flush=True)
        elif p.elapsed_s - last[0] >= 5 or p.ended >= total:
            last[0] = p.elapsed_s
            print(p.line(total), file=sys.stderr, flush=True)

    return show
