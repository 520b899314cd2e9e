"""`callcontrol recordings worker`: the process that compresses and stores the recordings.

Wiring only: services/recording_worker.py does the work, services/recording_jobs.py finds it,
adapters/db/recording_queue.py claims it, adapters/recording_status.py writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from callcontrol.adapters.db.engine import (
    check_schema_current,
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.adapters.db.recording_queue import SqlRecordingQueue
from callcontrol.adapters.recording_status import StatusFile
from callcontrol.cli.common import EXIT_OK
from callcontrol.config import Settings, recordings_spool
from callcontrol.idle_priority import cpu_seconds, lower_to_idle
from callcontrol.services import recordings
from callcontrol.services.recording_jobs import RecordingFinder, SettledCall, SpoolWatch, spool_file
from callcontrol.services.recording_worker import LEASE_S, POLL_S, RecordingWorker
from callcontrol.wiring import utcnow

log = logging.getLogger("callcontrol.recordings")

# How often the worker checks that the daemon that started it (--exit-with) is still there.
PARENT_CHECK_S = 1.0

HELP = "compress and store the recordings of settled calls (a long-running process)"

DESCRIPTION = """\
Run the recording worker until SIGTERM or SIGINT: it finds the settled calls whose audio
Asterisk's MixMonitor left in the spool ([recording] spool_dir) once the file stops growing,
compresses each to Ogg Opus, stores it in [recording] store_dir with its entry in the hash
chain, and removes the spool file; a call that should have a recording but whose file is
missing or empty 20 s after it was settled is listed by `recordings missing`. One recording at
a time, at idle priority (SCHED_IDLE, else niceness 19; ffmpeg inherits it): the calls always
come first, and what waits stays in the spool.

The daemon starts one as its child by default ([recording] worker = "spawn"). With
[recording] worker = "external" the site runs it instead, for example as
callcontrol-recordings-worker.service (`callcontrol systemd units`), or on other machines that
see the same database, spool and store. Several may run at once: each recording is claimed in
the database with a lease (renewed while it is worked on), so no two workers take the same one;
if a worker dies, its recording is taken over when the lease runs out. On SIGTERM the recording
being stored is finished first.

It writes its figures (recordings stored, seconds of audio, CPU seconds, the backlog now, its
peak and when it last drained) to [recording] worker_status_file as JSON, and logs each
recording with the CPU it took. See docs/recordings.md.
"""


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("the process that started the recording worker (%d) is gone", parent)
            stop.set()
            return
        await asyncio.sleep(PARENT_CHECK_S)


def build_worker(args: argparse.Namespace, settings: Settings, sessions: Any) -> RecordingWorker:
    spool, store_dir = recordings_spool(settings), settings.path(settings.recording.store_dir)
    bitrate = settings.recording.bitrate
    queue = SqlRecordingQueue(sessions)

    async def ingest(call: SettledCall) -> float | None:
        began = utcnow()
        rec = await recordings.ingest(
            sessions, store_dir, call.call_id, spool_file(spool, call.uniqueid), bitrate
        )
        if rec is None or rec.ingested_at < began:
            return None  # recorded missing, privileged, or stored before
        return rec.duration_ms / 1000

    status = args.status_file or settings.path(settings.recording.worker_status_file)
    return RecordingWorker(
        RecordingFinder(queue, SpoolWatch(spool)),
        queue,
        ingest,
        args.name or f"{socket.gethostname()}:{os.getpid()}",
        clock=utcnow,
        cpu=cpu_seconds,
        publish=StatusFile(Path(status)),
        poll_s=args.poll_s,
        lease_s=args.lease_s,
    )


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = make_engine(database_url(settings))
    tasks: list[asyncio.Task[None]] = []
    try:
        await check_schema_current(engine)
        worker = build_worker(args, settings, session_factory(engine))
        if args.exit_with:
            tasks.append(asyncio.create_task(_watch_parent(args.exit_with, stop)))
        await worker.run(stop)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


def recordings_worker(args: argparse.Namespace, settings: Settings) -> int:
    from callcontrol import logging_setup

    logging_setup.configure(settings.log.format, args.log_level or settings.log.level)
    recordings_spool(settings)  # no spool, nothing to do: say so before anything else
    got = lower_to_idle()  # before any thread starts: they inherit it
    log.info("recording worker at %s priority", got)
    asyncio.run(_run(args, settings))
    return EXIT_OK


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{value} s: give more than 0 and at most 3600")
    return seconds


def _pid(value: str) -> int:
    if not value.isdigit() or int(value) < 2:
        raise argparse.ArgumentTypeError(f"{value!r} is not a process id")
    return int(value)


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add `worker` to the `recordings` group's ``commands`` (their subparsers)."""
    from callcontrol.cli import command

    parser = command(commands, "worker", parents, recordings_worker, HELP, DESCRIPTION)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for flags, options in ARGUMENTS:
        parser.add_argument(*flags, **options)


ARGUMENTS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--status-file",), {"metavar": "FILE", "type": Path,
                          "help": "write the figures here (default [recording] "
                                  "worker_status_file); give each worker on one machine its own"}),
    (("--name",), {"metavar": "NAME", "help": "the worker's name in its claims and figures "
                                              "(default HOST:PID)"}),
    (("--poll-s",), {"metavar": "S", "type": _seconds, "default": POLL_S,
                     "help": f"look for calls settled since every S seconds (default {POLL_S:g})"}),
    (("--lease-s",), {"metavar": "S", "type": _seconds, "default": LEASE_S,
                      "help": "a claim lasts S seconds unless renewed; a dead worker's recording "
                              f"waits that long for another (default {LEASE_S:g})"}),
    (("--exit-with",), {"metavar": "PID", "type": _pid,
                        "help": "stop once process PID is no longer this one's parent (the "
                                "daemon passes its own when it starts the worker)"}),
    (("--log-level",), {"default": None, "choices": ["DEBUG", "INFO", "WARNING", "ERROR"],
                        "help": "default [log] level (INFO)"}),
)  # fmt: skip
