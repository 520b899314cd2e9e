"""The daemon: the one place that wires the adapters and owns every task's lifetime."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.call_end import CallEndHandler
from callcontrol.adapters.agi.cell_call import CellCallHandler, CellRefusedHandler, PinPrompting
from callcontrol.adapters.agi.listen import ListenHandler
from callcontrol.adapters.agi.secret import AgiSecretError, load_secret
from callcontrol.adapters.agi.server import FastAgiServer
from callcontrol.adapters.ami.channels import ChannelTracker
from callcontrol.adapters.ami.session import AmiActionLost, AmiError, AmiSession, AmiUnavailable
from callcontrol.adapters.anchor import AnchorError, SigningKey
from callcontrol.adapters.audiosocket.server import AudioSocketServer
from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.engine import (
    database_url,
    make_engine,
    session_factory,
)
from callcontrol.adapters.db.globals_cache import globals_source
from callcontrol.adapters.db.history_store import SqlHistoryReader
from callcontrol.adapters.db.journal_store import SqlJournalStore
from callcontrol.adapters.db.kiosk_store import SqlKioskStore
from callcontrol.adapters.db.pin_store import SqlPinAlerts
from callcontrol.adapters.db.recording_store import SqlRecordingStore
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.http import HttpServer
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenFile
from callcontrol.adapters.http.history import HistoryApi
from callcontrol.adapters.http.recordings import RecordingsApi
from callcontrol.adapters.journal_file import JournalFile
from callcontrol.adapters.kiosk.app import make_kiosk_app
from callcontrol.adapters.kiosk.sessions import KioskSessions, KioskThrottle
from callcontrol.adapters.recording_status import WorkerStatus
from callcontrol.adapters.storage import StoreFiles
from callcontrol.config import ConfigError, Settings, journal_path, recordings_spool
from callcontrol.daemon_ops import start_operations
from callcontrol.domain.call_end import CallEnd
from callcontrol.logging_setup import TEXT_FORMAT as LOG_FORMAT  # noqa: F401 (demo, bench)
from callcontrol.logging_setup import bind_call
from callcontrol.operator_services import operator_services
from callcontrol.recording_worker_process import SpawnedWorker
from callcontrol.services.authorise import CallAttempt
from callcontrol.services.browser_listen import BrowserListen
from callcontrol.services.cells_sync import CellsSync, keep_syncing
from callcontrol.services.chain_checkpoints import Checkpointer
from callcontrol.services.journal import JournalFollower
from callcontrol.services.kiosk import KioskService
from callcontrol.services.listen import ListenAuthoriser
from callcontrol.services.listen_grants import ListenGrants
from callcontrol.services.live_feed import LiveFeed
from callcontrol.services.pin_guard import PinLockStore
from callcontrol.services.recording_access import RecordingService
from callcontrol.services.settle import Settler
from callcontrol.services.supervise import CallControlGuard, Supervisor
from callcontrol.startup_checks import check_paths, check_schema
from callcontrol.wiring import billing_policy, build_authoriser, lockout_policy, utcnow  # noqa: F401

log = logging.getLogger("callcontrol.daemon")


# Seconds after a call's channel hangs up before the journal is consulted for its end.
JOURNAL_GRACE_S = 3.0


def agi_secret(settings: Settings) -> str:
    """The FastAGI shared secret from [agi] secret_file; ConfigError (one line) if it cannot
    serve. Only the lab may create a missing file: elsewhere Asterisk's configuration must
    already carry the secret, so a new one would only lock Asterisk out."""
    path = settings.path(settings.agi.secret_file)
    try:
        return load_secret(path, create=settings.lab.enabled, group=settings.agi.secret_group)
    except AgiSecretError as e:
        raise ConfigError(str(e)) from None


# How often the daemon reads what Asterisk appended to the journal (only the new bytes, in a
# thread) and checks whether it is due for rotation. Settling never waits for it: whoever needs
# the journal catches up first.
JOURNAL_POLL_S = 5.0


async def keep_following(follower: JournalFollower, settings: Settings, poll_s: float) -> None:
    """Read the journal as it grows, and rotate it when due, until cancelled. A failure is
    logged and tried again at the next poll."""
    a = settings.asterisk
    while True:
        try:
            await follower.rotate_if_due(a.journal_rotate_bytes, a.journal_rotate_s, utcnow())
        except Exception:
            log.exception("could not read or rotate the call journal; will try again")
        await asyncio.sleep(poll_s)


def build_cells_sync(settings: Settings, sessions: Any) -> CellsSync:
    """The daemon's sync of the cells' PJSIP endpoints: the file `asterisk sync` writes, and
    PJSIP reloaded through Asterisk's control socket (in a thread: it blocks)."""
    from callcontrol.adapters.asterisk import control, pjsip_cells
    from callcontrol.adapters.db.cell_endpoints import SqlCellEndpoints

    path = control.cells_conf_path(settings)

    def write(endpoints: Any) -> bool:
        return pjsip_cells.write_atomically(path, pjsip_cells.render(endpoints))

    async def reload() -> None:
        if settings.asterisk.reload_cells == "none":
            return  # callcontrol-cells.path (systemd) reloads PJSIP when the file changes
        await asyncio.to_thread(control.reload_pjsip, settings)

    return CellsSync(SqlCellEndpoints(sessions), write, reload)


# --- the supervision API (adapters/http, services/supervise) ---------------------------------


def build_http_server(
    settings: Settings,
    sessions: Any,
    ami: AmiSession,
    tracker: ChannelTracker,
    journal: JournalFollower,
    grants: ListenGrants | None = None,
    worker_status: WorkerStatus | None = None,
) -> HttpServer:
    """The officers' API: live calls, cut, listen, cells and prisoners; every act audited;
    and the staff console at /console/ ([console] enabled)."""

    async def acceptances() -> dict[str, datetime]:
        calls = await journal.entries(c.uniqueid for c in tracker.live())
        return {uid: e.accepted_at for uid, e in calls.items() if e.accepted_at is not None}

    control = CallControlGuard(
        ami, unavailable=(AmiUnavailable,), lost=(AmiActionLost,), failed=(AmiError,)
    )
    # The operator's services: the API, the console and the Supervisor's disable and suspend
    # all act through these very instances (one path per act).
    operator = operator_services(settings, sessions)
    supervisor = Supervisor(
        SqlSuperviseStore(sessions),
        control,
        SqlAuditLog(sessions),
        clock=utcnow,
        channels=lambda: {c.uniqueid: c.channel for c in tracker.live()},
        acceptances=acceptances,
        officer_desks=settings.asterisk.officer_desks,
        grants=grants,
        cells=operator.cells,
        prisoners=operator.prisoners,
    )
    tokens = TokenFile(settings.path(settings.http.tokens_file))
    history = HistoryApi(
        SqlHistoryReader(sessions), ZoneInfo(settings.site.timezone), settings.site.region
    )
    recordings = RecordingsApi(
        RecordingService(
            SqlRecordingStore(sessions),
            StoreFiles(settings.path(settings.recording.store_dir)),
            SqlAuditLog(sessions),
        ),
        ZoneInfo(settings.site.timezone),
        settings.site.region,
    )
    pin_alerts = SqlPinAlerts(sessions)
    app = make_app(supervisor, tokens, pin_alerts, history, operator, recordings)
    browser, audiosocket = build_browser_listen(settings, supervisor, tracker)
    feed = LiveFeed(supervisor)
    tracker.on_hangup(lambda *_: feed.poke())
    app.cleanup_ctx.append(partial(listening_lifetime, browser, audiosocket))
    if settings.console.enabled:
        from callcontrol.adapters.web import mount
        from callcontrol.adapters.web.setup import SqlRecordingAlerts, build_console

        recording_alerts = SqlRecordingAlerts(sessions, recordings_spool(settings), worker_status)
        console = build_console(
            settings,
            sessions,
            supervisor=supervisor,
            pin_alerts=pin_alerts,
            history=history,
            recording_alerts=recording_alerts,
            live_feed=feed,
            listening=browser,
            recordings=recordings,
            operator=operator,
        )
        mount(app, console)
    return HttpServer(app, settings.http.host, settings.http.port)


def build_browser_listen(
    settings: Settings, supervisor: Supervisor, tracker: ChannelTracker
) -> tuple[BrowserListen, AudioSocketServer]:
    """Listening from the console's page: the listens, and the AudioSocket server Asterisk
    sends their audio to (loopback only: anyone who reaches it could try UUIDs)."""
    s = settings.listen
    try:
        loopback = ipaddress.ip_address(s.audiosocket_host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"[listen] audiosocket_host must be a loopback address, not {s.audiosocket_host!r}"
        )
    server: AudioSocketServer | None = None
    browser = BrowserListen(
        supervisor,
        lambda: server.address if server is not None else "",
        max_streams=s.max_streams,
        max_per_person=s.max_per_person,
    )
    server = AudioSocketServer(browser.claim, s.audiosocket_host, s.audiosocket_port)
    tracker.on_hangup(lambda uniqueid, *_: browser.call_ended(uniqueid))
    return browser, server


async def listening_lifetime(
    browser: BrowserListen, server: AudioSocketServer, app: web.Application
) -> AsyncIterator[None]:
    """The AudioSocket server lives as long as the HTTP server that asks for listens."""
    try:
        await server.start()
    except OSError as e:
        raise ConfigError(
            f"[listen] the AudioSocket server cannot listen on {server.address}: {e.strerror or e}"
        ) from None
    yield
    browser.stop()
    await server.stop()


def build_kiosk(settings: Settings, pins: PinLockStore, sessions: Any) -> HttpServer:
    """The prisoners' kiosk ([kiosk]): its own application on its own listener."""
    from callcontrol.operator_services import operator_services

    site, k = settings.site, settings.kiosk
    operator = operator_services(settings, sessions)
    service = KioskService(
        SqlKioskStore(sessions),
        pins,
        accounts=operator.accounts,
        contacts=operator.contacts,
        prisoners=operator.prisoners,
        history=SqlHistoryReader(sessions),
        lockout=lockout_policy(settings),
        pin_secret=settings.pin_keys,
        clock=utcnow,
        pin_digits=site.pin_digits,
    )
    try:
        kiosk_sessions = KioskSessions(
            k.idle_timeout_s, k.session_max_s, secure_cookies=k.secure_cookies
        )
        throttle = KioskThrottle(k.failures_per_window, k.failures_window_s, k.failures_per_day)
    except ValueError as e:
        raise ConfigError(f"[kiosk] {e}") from None
    app = make_kiosk_app(service, kiosk_sessions, throttle, ZoneInfo(site.timezone))
    return HttpServer(app, k.host, k.port, what="kiosk")


# How often the daemon looks at the recording chain's head (one row read) to sign a checkpoint
# when it moved; it signs one at least every [recording] checkpoint_interval_s anyway.
CHECKPOINT_POLL_S = 60.0


async def keep_checkpointing(checkpointer: Checkpointer, poll_s: float) -> None:
    """Sign the chain's head when due, until cancelled. A failure (database down, disk full)
    is logged and tried again at the next poll: it must not stop the daemon deciding calls."""
    while True:
        try:
            await checkpointer.tick(utcnow())
        except Exception:
            log.exception("could not write a checkpoint of the recording chain; will try again")
        await asyncio.sleep(poll_s)


class Daemon:
    """Runs the FastAGI server, the AMI session and the supervision API until ``stop`` is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.agi: FastAgiServer | None = None
        self.ami: AmiSession | None = None
        self.http: HttpServer | None = None
        self.kiosk: HttpServer | None = None
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        s.pin_keys()  # no key (or a bad previous one), no PIN checks: refuse to start
        # No key, no anchor for the recordings: refuse to start (made 0600 on first start).
        try:
            chain_key = SigningKey.load(s.path(s.recording.signing_key_file), create=True)
        except AnchorError as e:
            raise ConfigError(str(e)) from None
        secret = agi_secret(s)  # no secret, no request Asterisk can prove its own: likewise
        # A built-in or missing AMI secret outside the lab: refuse to start (ConfigError).
        ami_secret = s.ami_secret(create=s.lab.enabled)
        # Outside the lab: the shared paths set, readable and writable (startup_checks.py).
        journal_at, spool = journal_path(s), recordings_spool(s)
        check_paths(s, journal_at, spool)
        engine = make_engine(database_url(s))
        tasks: list[asyncio.Task[None]] = []
        try:
            await check_schema(engine)
            sessions = session_factory(engine)
            if s.asterisk.sync_cells:
                sync = build_cells_sync(s, sessions)
                tasks.append(asyncio.create_task(keep_syncing(sync), name="cells-sync"))
            # The global numbers and tariffs, held in memory and reloaded when they change
            # (globals_cache.py): loaded before the first call, kept current by its task.
            globals_cache = globals_source(engine)
            await globals_cache.check()
            tasks.append(asyncio.create_task(globals_cache.run(), name="globals-cache"))
            store = SqlCallStore(sessions)
            auth = build_authoriser(s, store, globals_cache)
            settler = Settler(
                SqlSettlementStore(sessions), free_drop_s=s.billing.free_drop_s, clock=utcnow
            )
            journal = JournalFollower(JournalFile(journal_at), SqlJournalStore(sessions))
            tasks.append(
                asyncio.create_task(keep_following(journal, s, JOURNAL_POLL_S), name="call-journal")
            )
            # Recordings are the recording worker's (a process of its own at idle priority,
            # recording_worker_process.py): the daemon only shows its figures.
            worker_status = WorkerStatus(s.path(s.recording.worker_status_file))
            if s.recording.worker == "spawn":
                worker = SpawnedWorker(s)
                tasks.append(asyncio.create_task(worker.keep_running(), name="recording-worker"))
            # Polled every poll_s, due interval - poll_s after the last: never more than the
            # interval between two checkpoints.
            poll_s = min(CHECKPOINT_POLL_S, s.recording.checkpoint_interval_s / 4)
            checkpointer = Checkpointer(
                sessions,
                chain_key,
                s.path(s.recording.checkpoints_file),
                s.recording.checkpoint_interval_s - poll_s,
            )
            tasks.append(
                asyncio.create_task(
                    keep_checkpointing(checkpointer, poll_s), name="chain-checkpoints"
                )
            )

            async def late_allow(attempt: CallAttempt) -> None:
                # Allowed after the handset was refused: never bridged; release the credit.
                end = CallEnd(attempt.uniqueid, None, utcnow(), "", "", "late decision")
                await settler.settle(end, source="late decision")

            handler = CellCallHandler(
                auth,
                PinPrompting(
                    tries=s.site.pin_tries_per_call,
                    digits=s.site.pin_digits,
                    two_stage_number=s.site.two_stage_number,
                    number_timeout_ms=s.site.two_stage_timeout_s * 1000,
                    balance_code=s.site.balance_code,
                ),
                on_late_allow=late_allow,
            )
            tracker = ChannelTracker()
            # One-time listen ids: issued by the API's listen, checked by [cc-listen]'s request.
            grants = ListenGrants(utcnow)
            listen = ListenAuthoriser(
                grants,
                SqlSuperviseStore(sessions),
                SqlAuditLog(sessions),
                lambda: {c.uniqueid: c.channel for c in tracker.live()},
            )
            self.agi = FastAgiServer(
                {
                    cv.CELL_CALL_SCRIPT: handler,
                    cv.CELL_REFUSED_SCRIPT: CellRefusedHandler(auth),
                    cv.CALL_END_SCRIPT: CallEndHandler(settler),
                    cv.LISTEN_SCRIPT: ListenHandler(listen.authorise),
                },
                s.agi.host,
                s.agi.port,
                secret=secret,
                allowed_peers=s.agi.allowed_peers,
                read_timeout=s.agi.read_timeout_s,
                session_timeout=s.agi.session_timeout_s,
                handshake_timeout=s.agi.handshake_timeout_s,
                max_sessions=s.agi.max_sessions,
                max_sessions_per_peer=s.agi.max_sessions_per_peer,
                max_handshakes=s.agi.max_handshakes,
            )
            self.ami = AmiSession(
                s.ami.host, s.ami.port, s.ami.username, ami_secret, reconnect_s=s.ami.reconnect_s
            )
            tracker.attach(self.ami)

            async def ended(uniqueid: str, cause: str, cause_txt: str) -> None:
                bind_call(uniqueid)  # this task's log lines name the call
                hung_up_at = utcnow()
                await auth.call_ended(uniqueid, f"{cause} {cause_txt}".strip())
                # The hangup handler reports the end at once; if it could not (the FastAGI
                # request failed), the journal has it; if the handler never ran (the caller
                # hung up before the Dial), the call ended at this hangup.
                await asyncio.sleep(JOURNAL_GRACE_S)
                if await settler.store.open_call(uniqueid) is None:
                    return  # settled already, or not a call of ours: no need to read the journal
                entry = await journal.entry(uniqueid)
                await settler.settle_after_hangup(uniqueid, entry, hung_up_at)

            async def reconcile() -> None:
                assert self.ami is not None
                log.info("AMI: connected to %s:%s; reconciling calls", s.ami.host, s.ami.port)
                try:
                    live = await self.ami.core_show_channels()
                except (AmiError, AmiActionLost) as e:
                    log.warning("could not list Asterisk's channels to reconcile calls: %s", e)
                    return
                unsettled = await settler.store.unsettled_calls()
                await settler.reconcile(
                    {c.get("Uniqueid", "") for c in live},
                    await journal.entries(c.uniqueid for c in unsettled),
                    asterisk_lost_at=self.ami.lost_at,
                )

            # A call's record is its handset channel's (calls.uniqueid), the first channel of
            # the call: the others' hangups (Local pair, called party) have nothing to end.
            tracker.on_hangup(ended, first_only=True)
            self.ami.on_connected(reconcile)
            await self.agi.start()
            await self.ami.start()
            log.info("AMI: connecting to %s:%s as %s", s.ami.host, s.ami.port, s.ami.username)
            self.http = build_http_server(
                s, sessions, self.ami, tracker, journal, grants, worker_status
            )
            # --- operations: /ready, /metrics, readiness for systemd (daemon_ops.py) ---
            ops = start_operations(
                s,
                engine=engine,
                sessions=sessions,
                agi=self.agi,
                ami=self.ami,
                http=self.http,
                auth=auth,
                settler=settler,
                worker_status=worker_status,
                stop=stop,
            )
            tasks.extend(ops.tasks)
            # --- end of operations ---
            await self.http.start()
            if s.kiosk.enabled:
                self.kiosk = build_kiosk(s, store, sessions)
                await self.kiosk.start()
            self.started.set()
            await stop.wait()
            log.info("stopping")
            ops.stopping()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.kiosk is not None:
                await self.kiosk.stop()
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
