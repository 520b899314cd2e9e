"""The daemon's operational side, wired apart from app.py: readiness for systemd and /ready,
the Prometheus metrics at /metrics, and the metrics' scrape token."""

from __future__ import annotations

import asyncio
import grp
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcontrol.adapters.agi.secret import AgiSecretError, load_secret
from callcontrol.adapters.agi.server import FastAgiServer
from callcontrol.adapters.ami.session import AmiSession
from callcontrol.adapters.db.engine import current_revision, head_revision
from callcontrol.adapters.db.figures_store import SqlFigures
from callcontrol.adapters.http import HttpServer
from callcontrol.adapters.http.metrics import Live, Metrics, add_routes
from callcontrol.adapters.recording_status import WorkerStatus
from callcontrol.config import ConfigError, Settings
from callcontrol.readiness import Readiness
from callcontrol.sd_notify import Notifier
from callcontrol.services.authorise import Authoriser
from callcontrol.services.settle import Settler
from callcontrol.wiring import utcnow


def metrics_token(settings: Settings) -> str:
    """The scrape token ("" when /metrics is open or off); created on first use (0640, group
    [metrics] token_group), like the FastAGI secret. ConfigError when it cannot serve."""
    if settings.metrics.access != "token":
        return ""
    path = settings.path(settings.metrics.token_file)
    group = settings.metrics.token_group
    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            raise ConfigError(f"[metrics] token_group {group!r} is not a group here") from None
    try:
        return load_secret(path, create=True, group=settings.metrics.token_group)
    except AgiSecretError as e:
        raise ConfigError(f"[metrics] token_file: {e}") from None


def database_check(engine: AsyncEngine):  # noqa: ANN201 - a closure
    """'' when the database answers and is at the latest schema, else why not."""
    head = head_revision()

    async def check() -> str:
        current = await current_revision(engine)
        return "" if current == head else f"schema at {current or 'nothing'}, not {head}"

    return check


@dataclass
class Operations:
    readiness: Readiness
    notifier: Notifier
    metrics: Metrics | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def stopping(self) -> None:
        self.notifier.stopping("stopping: finishing the calls being decided")


def start_operations(
    settings: Settings,
    *,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    agi: FastAgiServer,
    ami: AmiSession,
    http: HttpServer,
    auth: Authoriser,
    settler: Settler,
    worker_status: WorkerStatus,
    stop: asyncio.Event,
) -> Operations:
    """Wire readiness and metrics into the parts (before ``http`` starts: it adds routes) and
    start the tasks that tell systemd; the caller cancels ``tasks`` when the daemon stops."""
    s = settings
    token = metrics_token(s)
    readiness = Readiness(lambda: agi.listening, lambda: ami.connected, database_check(engine))
    metrics = None
    if s.metrics.access != "off":
        live = Live(
            ami_connected=lambda: ami.connected,
            agi_sessions=lambda: agi.active_sessions,
            recordings_ingesting=lambda: worker_status.in_progress,
            recording_failures=lambda: worker_status.failures,
            clock=utcnow,
            decision_store_failures=lambda: auth.store_failures,
        )
        metrics = Metrics(live, SqlFigures(sessions).figures, readiness, s.metrics.db_cache_s)
        auth.on_decided.append(metrics.decided)
        settler.on_settled.append(metrics.settled)
    add_routes(http.app, readiness, metrics, token)
    notifier = Notifier()
    agi_where = f"{s.agi.host}:{agi.port}"  # agi has started: its bound port
    ami_where = f"{s.ami.host}:{s.ami.port}"
    tasks = [
        asyncio.create_task(
            readiness.notify_systemd(notifier, agi_where, ami_where, stop), name="systemd-ready"
        ),
        asyncio.create_task(notifier.keep_alive(), name="systemd-watchdog"),
    ]
    return Operations(readiness, notifier, metrics, tasks)
