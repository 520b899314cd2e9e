"""The recording worker as the daemon's child ([recording] worker = "spawn", the default).

The daemon starts `callcontrol recordings worker` with its own Python and settings file,
restarts it if it dies (after 1 s, doubling up to a minute while it keeps dying at once), and
stops it with itself: SIGTERM, which lets it finish the recording in hand, then SIGKILL after
STOP_S (its claim's lease then hands the recording to the next worker). The worker also stops
by itself if the daemon dies (``--exit-with``). Its logs go where the daemon's go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from callcontrol.config import Settings

log = logging.getLogger("callcontrol.daemon")

RESTART_S = 1.0
RESTART_MAX_S = 60.0
# A worker that ran this long was not dying at once: the next restart waits RESTART_S again.
HEALTHY_S = 60.0
# At the daemon's stop, how long the worker may take to finish the recording in hand.
STOP_S = 15.0
NOT_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_")


def worker_command(settings: Settings) -> list[str]:
    argv = [sys.executable, "-m", "callcontrol", "recordings", "worker"]
    argv += ["--exit-with", str(os.getpid())]
    if settings.config_file is not None:
        argv += ["--config", str(settings.config_file)]
    return argv


class SpawnedWorker:
    def __init__(self, settings: Settings, stop_s: float = STOP_S) -> None:
        self.argv = worker_command(settings)
        # Relative paths as the daemon resolves them, whatever the settings file says; and
        # not systemd's notify socket, which is the daemon's alone.
        env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}
        self.env = {**env, "CALLCONTROL_BASE_DIR": str(settings.base_dir)}
        self.stop_s = stop_s
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def keep_running(self) -> None:
        """Run the worker, and again whenever it ends, until cancelled (then stop it)."""
        loop = asyncio.get_running_loop()
        pause = RESTART_S
        try:
            while True:
                began, ran = loop.time(), 0.0
                try:
                    # A session of its own: a Ctrl-C at the terminal is the daemon's to pass on.
                    self.proc = await asyncio.create_subprocess_exec(
                        *self.argv, env=self.env, start_new_session=True
                    )
                except OSError as e:
                    log.error("could not start the recording worker: %s", e.strerror or e)
                else:
                    self.starts += 1
                    log.info("recording worker started (pid %d)", self.proc.pid)
                    status = await self.proc.wait()
                    ran = loop.time() - began
                    log.error(
                        "the recording worker (pid %d) ended with status %s; starting it again "
                        "in %.0f s (recordings wait in the spool meanwhile)",
                        self.proc.pid,
                        status,
                        pause,
                    )
                if ran >= HEALTHY_S:
                    pause = RESTART_S
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESTART_MAX_S)
        finally:
            await asyncio.shield(self.stop())

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_s)
        except TimeoutError:
            log.warning("the recording worker did not stop within %.0f s: killed", self.stop_s)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("recording worker stopped")
