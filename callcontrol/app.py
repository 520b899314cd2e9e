"""The daemon: the one place that wires the adapters and owns every task's lifetime."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.call_end import CallEndHandler
from callcontrol.adapters.agi.cell_call import CellCallHandler, CellRefusedHandler, PinPrompting
from callcontrol.adapters.agi.server import FastAgiServer
from callcontrol.adapters.ami.channels import ChannelTracker
from callcontrol.adapters.ami.session import AmiActionLost, AmiError, AmiSession, AmiUnavailable
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import (
    check_schema_current,
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.http import HttpServer
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenFile
from callcontrol.config import Settings
from callcontrol.domain.call_end import CallEnd, read_journal
from callcontrol.services.authorise import CallAttempt
from callcontrol.services.recording_jobs import RecordingJobs
from callcontrol.services.settle import Settler
from callcontrol.services.supervise import CallControlGuard, Supervisor
from callcontrol.wiring import billing_policy, build_authoriser, utcnow  # noqa: F401

log = logging.getLogger("callcontrol.daemon")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


# Seconds after a call's channel hangs up before the journal is consulted for its end.
JOURNAL_GRACE_S = 3.0


def journal_path(settings: Settings) -> Path:
    """Where Asterisk writes the call journal, as the daemon sees it."""
    if settings.asterisk.journal_file:
        return settings.path(settings.asterisk.journal_file)
    from callcontrol.lab.lab import Lab

    return Lab(settings).journal_path


def recordings_spool(settings: Settings) -> Path:
    """Where MixMonitor streams recorded calls, as the daemon sees it."""
    if settings.recording.spool_dir:
        return settings.path(settings.recording.spool_dir)
    from callcontrol.lab.lab import Lab

    return Lab(settings).recordings_spool


def read_journal_file(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            calls, bad = read_journal(f)
    except FileNotFoundError:
        return {}
    for line in bad[-5:]:
        log.warning("call journal %s: unreadable line %r", path, line[:200])
    return calls


# --- the supervision API (adapters/http, services/supervise) ---------------------------------


def build_http_server(
    settings: Settings, sessions: Any, ami: AmiSession, tracker: ChannelTracker, journal: Path
) -> HttpServer:
    """The officers' API: live calls, cut, listen, cells and prisoners; every act audited."""

    async def acceptances() -> dict[str, datetime]:
        calls = await asyncio.to_thread(read_journal_file, journal)
        return {uid: e.accepted_at for uid, e in calls.items() if e.accepted_at is not None}

    control = CallControlGuard(
        ami, unavailable=(AmiUnavailable,), lost=(AmiActionLost,), failed=(AmiError,)
    )
    supervisor = Supervisor(
        SqlSuperviseStore(sessions),
        control,
        SqlAuditLog(sessions),
        clock=utcnow,
        channels=lambda: {c.uniqueid: c.channel for c in tracker.live()},
        acceptances=acceptances,
    )
    tokens = TokenFile(settings.path(settings.http.tokens_file))
    return HttpServer(make_app(supervisor, tokens), settings.http.host, settings.http.port)


class Daemon:
    """Runs the FastAGI server, the AMI session and the supervision API until ``stop`` is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.agi: FastAgiServer | None = None
        self.ami: AmiSession | None = None
        self.http: HttpServer | None = None
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        s.pin_secret()  # no key, no PIN checks: refuse to start rather than refuse every call
        engine = make_engine(database_url(s))
        try:
            await check_schema_current(engine)
            sessions = session_factory(engine)
            store = SqlCallStore(sessions)
            auth = build_authoriser(s, store)
            settler = Settler(
                SqlSettlementStore(sessions), free_drop_s=s.billing.free_drop_s, clock=utcnow
            )
            journal = journal_path(s)
            jobs = RecordingJobs(
                sessions, recordings_spool(s), s.path(s.recording.store_dir), s.recording.bitrate
            )
            settler.on_settled.append(jobs.after_settlement)

            async def late_allow(attempt: CallAttempt) -> None:
                # Allowed after the handset was refused: never bridged; release the credit.
                end = CallEnd(attempt.uniqueid, None, utcnow(), "", "", "late decision")
                await settler.settle(end, source="late decision")

            handler = CellCallHandler(
                auth,
                PinPrompting(tries=s.site.pin_tries_per_call, digits=s.site.pin_digits),
                on_late_allow=late_allow,
            )
            self.agi = FastAgiServer(
                {
                    cv.CELL_CALL_SCRIPT: handler,
                    cv.CELL_REFUSED_SCRIPT: CellRefusedHandler(auth),
                    cv.CALL_END_SCRIPT: CallEndHandler(settler),
                },
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
                hung_up_at = utcnow()
                await auth.call_ended(uniqueid, f"{cause} {cause_txt}".strip())
                # The hangup handler reports the end at once; if it could not (the FastAGI
                # request failed), the journal has it; if the handler never ran (the caller
                # hung up before the Dial), the call ended at this hangup.
                await asyncio.sleep(JOURNAL_GRACE_S)
                if await settler.store.open_call(uniqueid) is None:
                    return  # settled already, or not a call of ours: no need to read the journal
                calls = await asyncio.to_thread(read_journal_file, journal)
                await settler.settle_after_hangup(uniqueid, calls.get(uniqueid), hung_up_at)

            async def reconcile() -> None:
                assert self.ami is not None
                log.info("AMI: connected to %s:%s; reconciling calls", s.ami.host, s.ami.port)
                try:
                    live = await self.ami.core_show_channels()
                except (AmiError, AmiActionLost) as e:
                    log.warning("could not list Asterisk's channels to reconcile calls: %s", e)
                    return
                await settler.reconcile(
                    {c.get("Uniqueid", "") for c in live},
                    read_journal_file(journal),
                    asterisk_lost_at=self.ami.lost_at,
                )
                await jobs.catch_up()

            tracker.on_hangup(ended)
            self.ami.on_connected(reconcile)
            await self.agi.start()
            await self.ami.start()
            log.info("AMI: connecting to %s:%s as %s", s.ami.host, s.ami.port, s.ami.username)
            self.http = build_http_server(s, sessions, self.ami, tracker, journal)
            await self.http.start()
            self.started.set()
            await stop.wait()
            log.info("stopping")
        finally:
            if self.http is not None:
                await self.http.stop()
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
