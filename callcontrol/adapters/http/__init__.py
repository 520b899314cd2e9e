"""The supervision API over HTTP: api.py (the aiohttp application), auth.py (API tokens), and
HttpServer here, which serves the application for the daemon's lifetime."""

from __future__ import annotations

import logging

from aiohttp import web

from callcontrol.config import ConfigError

log = logging.getLogger("callcontrol.http")

# Seconds a stopping daemon gives requests still running (a listen waits for a phone to answer).
SHUTDOWN_TIMEOUT_S = 2.0


class HttpServerError(ConfigError):
    """The API could not start (the address is taken, ...): the daemon does not start."""


class HttpServer:
    """Serve an aiohttp application on host:port, from ``start`` to ``stop``."""

    def __init__(
        self, app: web.Application, host: str, port: int, what: str = "supervision API"
    ) -> None:
        self.app = app
        self.what = what
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()  # runs the application's cleanup_ctx start-up
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise HttpServerError(
                f"{self.what} cannot listen on {self.host}:{self.port}: {e.strerror or e}"
            ) from None
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and self.port == 0:
                self.port = int(address[1])
        log.info("%s listening on http://%s:%s", self.what, self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()  # runs the application's cleanup_ctx clean-up
