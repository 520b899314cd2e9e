"""The daemon: the one place that wires the adapters and owns every task's lifetime."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.cell_call import CellCallHandler, PinPrompting
from callcontrol.adapters.agi.server import FastAgiServer
from callcontrol.adapters.ami.channels import ChannelTracker
from callcontrol.adapters.ami.session import AmiActionLost, AmiError, AmiSession
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import (
    check_schema_current,
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.config import Settings
from callcontrol.domain.pins import LockoutPolicy
from callcontrol.domain.rules import SitePolicy
from callcontrol.services.authorise import Authoriser

log = logging.getLogger("callcontrol.daemon")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_authoriser(settings: Settings, store: SqlCallStore) -> Authoriser:
    site = settings.site
    from datetime import timedelta

    return Authoriser(
        store,
        policy=SitePolicy(
            region=site.region, emergency_calls_allowed=site.emergency_calls == "allow"
        ),
        lockout=LockoutPolicy(
            failures=site.pin_lockout_failures,
            window=timedelta(seconds=site.pin_lockout_window_s),
            lockout=timedelta(seconds=site.pin_lockout_s),
        ),
        pin_secret=settings.pin_secret,
        clock=utcnow,
    )


class Daemon:
    """Runs the FastAGI server and the AMI session until ``stop`` is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.agi: FastAgiServer | None = None
        self.ami: AmiSession | None = None
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        s.pin_secret()  # no key, no PIN checks: refuse to start rather than refuse every call
        engine = make_engine(database_url(s))
        try:
            await check_schema_current(engine)
            store = SqlCallStore(session_factory(engine))
            auth = build_authoriser(s, store)
            handler = CellCallHandler(
                auth, PinPrompting(tries=s.site.pin_tries_per_call, digits=s.site.pin_digits)
            )
            self.agi = FastAgiServer(
                {cv.CELL_CALL_SCRIPT: handler},
                s.agi.host,
                s.agi.port,
                read_timeout=s.agi.read_timeout_s,
                session_timeout=s.agi.session_timeout_s,
            )
            self.ami = AmiSession(
                s.ami.host, s.ami.port, s.ami.username, s.ami.secret, reconnect_s=s.ami.reconnect_s
            )
            tracker = ChannelTracker()
            tracker.attach(self.ami)

            async def ended(uniqueid: str, cause: str, cause_txt: str) -> None:
                await auth.call_ended(uniqueid, f"{cause} {cause_txt}".strip())

            async def reconcile() -> None:
                assert self.ami is not None
                log.info("AMI: connected to %s:%s; reconciling calls", s.ami.host, s.ami.port)
                try:
                    live = await self.ami.core_show_channels()
                except (AmiError, AmiActionLost) as e:
                    log.warning("could not list Asterisk's channels to reconcile calls: %s", e)
                    return
                await auth.reconcile({c.get("Uniqueid", "") for c in live})

            tracker.on_hangup(ended)
            self.ami.on_connected(reconcile)
            await self.agi.start()
            await self.ami.start()
            log.info("AMI: connecting to %s:%s as %s", s.ami.host, s.ami.port, s.ami.username)
            self.started.set()
            await stop.wait()
            log.info("stopping")
        finally:
            if self.agi is not None:
                await self.agi.stop()
            if self.ami is not None:
                await self.ami.stop()
            await engine.dispose()


async def run_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await Daemon(settings).run(stop)
