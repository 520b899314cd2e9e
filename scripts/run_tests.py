#!/usr/bin/env python3
"""Run the test suite as `make test` does: the end-to-end tests in parallel shards.

The end-to-end tests (tests/e2e) mostly wait on timers (calls of several seconds, SIP and AGI
timeouts), so they are split by file into shards that run at once, each in a network namespace
of its own (its own loopback: the labs' fixed ports cannot clash) with a lab of its own
(CALLCONTROL_TEST_LAB). The rest of the suite runs beside them in this namespace. Files go to
shards by their duration recorded in tests/e2e/timings.json (longest first, each to the least
loaded shard); a file not listed there yet is estimated from its number of tests.

Each part writes its output to a log under var/test-logs/LAB/; the logs are printed when all parts
have ended (with the tail of a failed part repeated last), and the exit status is non-zero if
any part failed. The namespaces are removed afterwards, also after Ctrl-C or a failure.

Network namespaces need root and `ip` (iproute2). Without them, or with --serial, the whole
suite runs in one pytest, as it always did. Extra pytest options (not paths) come after `--` or
in PYTEST_ARGS; they go to every part.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
E2E_DIR = ROOT / "tests" / "e2e"
TIMINGS = E2E_DIR / "timings.json"
LOGS = ROOT / "var" / "test-logs"  # a folder per lab name: two runs may share a checkout
PYTEST = [sys.executable, "-m", "pytest", "-ra", "--durations=20"]
NO_TESTS = 5  # pytest's status when every test was deselected (a -k in PYTEST_ARGS, say)
DEFAULT_SHARDS = 3
TAIL_LINES = 60
STOP_GRACE_S = 60.0  # time a part gets to tear down (stop its lab, daemon, PostgreSQL)


# --- planning ---


def e2e_files() -> list[str]:
    """The end-to-end test files, relative to the checkout, in pytest's (alphabetical) order."""
    return sorted(str(p.relative_to(ROOT)) for p in E2E_DIR.glob("test_*.py"))


def count_tests(path: Path) -> int:
    return max(1, len(re.findall(r"^(?:async )?def test_", path.read_text(), re.MULTILINE)))


def estimates(files: list[str], timings: dict[str, float]) -> dict[str, float]:
    """Seconds each file is expected to take: its recorded time, or for a file without one,
    its number of tests times the recorded files' mean time per test."""
    known = {f: timings[Path(f).name] for f in files if Path(f).name in timings}
    counted = sum(count_tests(ROOT / f) for f in known)
    per_test = sum(known.values()) / counted if counted else 30.0
    return {f: known.get(f, count_tests(ROOT / f) * per_test) for f in files}


def plan(expected: dict[str, float], shards: int) -> list[list[str]]:
    """Files into at most ``shards`` groups of about equal expected time: longest first, each
    to the group with the least so far. Each group keeps pytest's file order; empty groups are
    left out."""
    groups: list[list[str]] = [[] for _ in range(shards)]
    loads = [0.0] * shards
    for f in sorted(expected, key=lambda f: (-expected[f], f)):
        i = loads.index(min(loads))
        groups[i].append(f)
        loads[i] += expected[f]
    return [sorted(g) for g in groups if g]


def load_timings() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(TIMINGS.read_text()).items()}
    except (OSError, ValueError):
        return {}


def measured_timings(reports: list[Path]) -> dict[str, float]:
    """Seconds per test file from pytest's JUnit XML reports (setup, call and teardown)."""
    times: dict[str, float] = {}
    for report in reports:
        if not report.exists():
            continue
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("classname", "").split(".")[-1] + ".py"
            times[name] = times.get(name, 0.0) + float(case.get("time", 0))
    return {k: round(v, 1) for k, v in sorted(times.items())}


# --- network namespaces ---


def netns_usable() -> str | None:
    """None if network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "not running as root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def netns_pids(name: str) -> list[int]:
    out = _ip("netns", "pids", name)
    return [int(p) for p in out.stdout.split()] if out.returncode == 0 else []


def netns_add(name: str) -> None:
    """A fresh namespace with its loopback up. A namespace of that name left by a run that was
    killed is removed first; one that still has processes in it belongs to a run going on."""
    if name in _ip("netns", "list").stdout.split():
        if netns_pids(name):
            raise RuntimeError(
                f"network namespace {name} is in use (another `make test` with this lab name?); "
                "set CALLCONTROL_TEST_LAB to another name"
            )
        _ip("netns", "del", name)
    for args in (("netns", "add", name), ("netns", "exec", name, "ip", "link", "set", "lo", "up")):
        out = _ip(*args)
        if out.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


def netns_remove(name: str) -> None:
    """Remove the namespace, ending whatever is still running in it (our lab's Asterisk,
    SIPp or PostgreSQL, if a part was killed before it could stop them)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = netns_pids(name)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while pids and netns_pids(name) and time.monotonic() < deadline:
            time.sleep(0.1)
    _ip("netns", "del", name)


# --- the shared Asterisk root ---

# Run in this namespace before the shards start: a shard's namespace has no network, so the
# Asterisk root (debootstrap, apt) and the Debian packages the pyst2 benchmark mode needs in it
# (apt) must be in place first. Both steps are idempotent and quick once done.
PREPARE_ROOT = """
import os
from callcontrol_lab.bench.pyst2_root import ensure_root_packages
from callcontrol.config import load_settings
from callcontrol_lab.lab import Lab
lab = Lab(load_settings(env={k: v for k, v in os.environ.items() if k != "CALLCONTROL_CONFIG"}))
lab.ensure_root()
if lab.chrooted:
    ensure_root_packages(lab.root)
"""


# tests/e2e/test_wheel_install.py installs the wheel's dependencies offline from this folder,
# which it fills from PyPI the first time: on a fresh machine, fill it here, with the network.
WHEELHOUSE = Path("~/.cache/callcontrol/wheelhouse").expanduser()


def prepare_wheelhouse() -> None:
    """Every dependency of the product's wheel, as wheels: run each time, so that a dependency
    added since the last run is fetched too (those already there are found in the folder)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(WHEELHOUSE),
         "--find-links", str(WHEELHOUSE), str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    for ours in WHEELHOUSE.glob("callcontrol-*.whl"):
        ours.unlink()
    if proc.returncode != 0:
        shutil.rmtree(WHEELHOUSE, ignore_errors=True)
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"fetching the wheel's dependencies into {WHEELHOUSE} failed:\n{tail}")


def prepare_root() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PREPARE_ROOT], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"preparing the Asterisk root failed:\n{tail}")


# --- running ---


@dataclass
class Part:
    name: str
    cmd: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    netns: str | None = None
    expected_s: float | None = None
    may_be_empty: bool = False  # extra pytest options may deselect all of a part's tests
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    took: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == 0 or (self.may_be_empty and self.code == NO_TESTS)

    def start(self) -> None:
        cmd = ["ip", "netns", "exec", self.netns, *self.cmd] if self.netns else self.cmd
        with open(self.log, "wb") as out:
            out.write(f"$ {shlex.join(self.cmd)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,  # Ctrl-C reaches it through us, once
            )
        self.started = time.monotonic()

    @property
    def code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def summary(self) -> str:
        """pytest's last line ("== 3 passed in 12.3s =="), without the rules."""
        lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip("= ") if lines else "(no output)"


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def run_parts(parts: list[Part]) -> bool:
    """Start every part, wait for all (passing Ctrl-C or SIGTERM on to them), print their logs;
    True when all passed."""
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for p in parts:
            p.signal(signal.SIGINT)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    began = time.monotonic()
    try:
        for p in parts:
            p.start()
            planned = f", about {minutes(p.expected_s)} planned" if p.expected_s else ""
            print(f"started {p.name} ({p.log.relative_to(ROOT)}{planned})", flush=True)
        waiting, stop_at = list(parts), None
        while waiting:
            for p in list(waiting):
                if p.code is not None:
                    waiting.remove(p)
                    p.took = time.monotonic() - p.started
                    word = "passed" if p.ok else f"FAILED (status {p.code})"
                    print(f"{p.name}: {word} in {minutes(p.took)}: {p.summary()}", flush=True)
            if stopping and stop_at is None:
                stop_at = time.monotonic() + STOP_GRACE_S
            if stop_at is not None and time.monotonic() > stop_at:
                for p in waiting:
                    p.signal(signal.SIGKILL)
            time.sleep(0.5)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for p in parts:  # none is left running, whatever went wrong here
            p.signal(signal.SIGKILL)
    for p in parts:
        print(f"\n{'#' * 30} {p.name} ({p.log.relative_to(ROOT)}) {'#' * 30}")
        print(p.log.read_text(errors="replace"), end="", flush=True)
    failed = [p for p in parts if not p.ok]
    for p in failed:
        tail = p.log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        print(f"\n{'!' * 30} {p.name} failed; its last lines {'!' * 30}")
        print("\n".join(tail))
    print()
    for p in parts:
        word = "passed" if p.ok else "FAILED"
        print(f"{p.name:>13}: {word:6} {minutes(p.took):>7}  {p.summary()}")
    print(f"{'all parts':>13}: {'passed' if not failed else 'FAILED':6} "
          f"{minutes(time.monotonic() - began):>7}")  # fmt: skip
    if stopping:
        raise KeyboardInterrupt
    return not failed


def run_serial(extra: list[str], why: str | None) -> int:
    if why:
        print(f"run_tests: {why}: no network namespaces, so the whole suite runs in one pytest, "
              "one test after another (about 40 minutes)", flush=True)  # fmt: skip
    return subprocess.call([*PYTEST, *extra], cwd=ROOT)


def run_sharded(extra: list[str], shards: int, update_timings: bool) -> int:
    expected = estimates(e2e_files(), load_timings())
    groups = plan(expected, shards)
    base = os.environ.get("CALLCONTROL_TEST_LAB", "test")
    logs = LOGS / base
    logs.mkdir(parents=True, exist_ok=True)
    parts = [
        Part("rest", [*PYTEST, "tests", "--ignore=tests/e2e", *extra], logs / "rest.log"),
    ]
    for i, files in enumerate(groups, 1):
        report = logs / f"e2e-{i}.xml"
        parts.append(
            Part(
                f"e2e shard {i}",
                [*PYTEST, f"--junitxml={report}", *files, *extra],
                logs / f"e2e-{i}.log",
                env={"CALLCONTROL_TEST_LAB": f"{base}-{i}"},
                netns=f"cc-{base}-{i}",
                expected_s=sum(expected[f] for f in files),
            )
        )
    print("preparing the Asterisk root and the wheelhouse (the shards' namespaces have no network)")
    prepare_root()
    prepare_wheelhouse()
    for p in parts:
        p.may_be_empty = bool(extra)
    made: list[str] = []
    try:
        for p in parts:
            if p.netns:
                netns_add(p.netns)
                made.append(p.netns)
        for p in parts[1:]:
            print(f"{p.name}: {' '.join(Path(f).stem for f in p.cmd if f.endswith('.py'))}")
        ok = run_parts(parts)
    finally:
        for name in made:
            netns_remove(name)
    if update_timings:
        reports = [logs / f"e2e-{i}.xml" for i in range(1, len(groups) + 1)]
        TIMINGS.write_text(json.dumps(measured_timings(reports), indent=1) + "\n")
        print(f"wrote {TIMINGS.relative_to(ROOT)}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Run the whole test suite: the end-to-end tests in parallel shards, each in "
        "a network namespace of its own, beside the rest (needs root); else one after another.",
        epilog="Extra pytest options after `--` or in PYTEST_ARGS go to every part.",
    )
    ap.add_argument("--serial", action="store_true", help="one pytest for the whole suite")
    ap.add_argument(
        "--shards",
        type=int,
        default=int(os.environ.get("TEST_SHARDS", DEFAULT_SHARDS)),
        help=f"end-to-end shards (default {DEFAULT_SHARDS}, or TEST_SHARDS)",
    )
    ap.add_argument(
        "--update-timings",
        action="store_true",
        help=f"write the measured time per end-to-end file to {TIMINGS.relative_to(ROOT)}",
    )
    ap.add_argument("pytest_args", nargs="*", help="extra pytest options (after --)")
    args = ap.parse_args(argv)
    extra = shlex.split(os.environ.get("PYTEST_ARGS", "")) + args.pytest_args
    if args.shards < 1:
        ap.error("--shards must be at least 1")
    if args.serial:
        return run_serial(extra, None)
    why = netns_usable()
    if why:
        return run_serial(extra, why)
    try:
        return run_sharded(extra, args.shards, args.update_timings)
    except RuntimeError as e:
        print(f"run_tests: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("run_tests: interrupted; the namespaces are removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
