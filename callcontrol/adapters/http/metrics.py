"""Prometheus metrics at GET /metrics, and GET /ready, on the daemon's HTTP server.

What moves as calls are handled (decisions, their latency, settlement lag, failed ingests) is
counted in this process as it happens; what the database knows (calls live, recordings pending
and missing, ledger totals) is read with a few aggregate queries (adapters/db/figures_store.py)
at most every ``[metrics] db_cache_s`` seconds, whatever the scrape rate. Each daemon has a
registry of its own (not prometheus_client's global one).

Who may read /metrics: ``[metrics] access``. "token" (the default) wants ``Authorization:
Bearer`` with the token in ``[metrics] token_file`` (compared in constant time); "open" serves
anyone who reaches the HTTP port; "off" serves nothing. The API's officer and admin tokens are
not accepted: a scraper needs no power over calls. /ready and /health carry no figures and need
no token.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcontrol.adapters.db.figures_store import Figures
from callcontrol.adapters.http.auth import bearer_token
from callcontrol.domain.model import Outcome, Reason
from callcontrol.readiness import Readiness
from callcontrol.services.authorise import DecisionRecord
from callcontrol.services.settle import OpenCall, Settlement

log = logging.getLogger("callcontrol.metrics")

ALLOW_REASONS = {Reason.APPROVED_CONTACT, Reason.GLOBAL_ALLOWED, Reason.EMERGENCY_ALLOWED}
SERVICE_REASONS = {Reason.BALANCE_ENQUIRY}  # a service code answered: no call
DECISION_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)


@dataclass(frozen=True)
class Live:
    """What the metrics read from the running daemon at each scrape."""

    ami_connected: Callable[[], bool]
    agi_sessions: Callable[[], int]
    recordings_ingesting: Callable[[], int]
    recording_failures: Callable[[], int]
    clock: Callable[[], datetime]
    decision_store_failures: Callable[[], int] = lambda: 0


class Metrics:
    def __init__(
        self,
        live: Live,
        figures: Callable[[], Awaitable[Figures]],
        readiness: Readiness | None = None,
        db_cache_s: float = 15.0,
    ) -> None:
        self.live = live
        self._figures_source = figures
        self.readiness = readiness
        self.db_cache_s = db_cache_s
        self._figures: Figures | None = None
        self._figures_at = float("-inf")
        self._db_up = False
        self._ready = False
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "callcontrol_decisions",
            "Calls decided, by outcome and reason (refusals before any question included).",
            ["outcome", "reason"],
            registry=self.registry,
        )
        for reason in Reason:  # every series from the start, so that rates work from 0
            outcome = Outcome.ALLOW if reason in ALLOW_REASONS else Outcome.REFUSE
            outcome = Outcome.SERVICE if reason in SERVICE_REASONS else outcome
            self.decisions.labels(outcome.value, reason.value)
        self.decision_seconds = Histogram(
            "callcontrol_decision_seconds",
            "Time to decide on the number once the PIN is known (database included).",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.settlement_lag = Histogram(
            "callcontrol_settlement_lag_seconds",
            "From a call's end to its settlement (charge written, reservation released).",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Scraped(self))

    # --- as things happen (wired to Authoriser.on_decided and Settler.on_settled) ---

    def decided(self, record: DecisionRecord) -> None:
        d = record.decision
        self.decisions.labels(d.outcome.value, d.reason.value).inc()
        if record.decision_ms is not None:
            self.decision_seconds.observe(record.decision_ms / 1000)

    def settled(self, call: OpenCall, settlement: Settlement) -> None:
        if settlement.ended_at is not None:
            lag = (self.live.clock() - settlement.ended_at).total_seconds()
            self.settlement_lag.observe(max(lag, 0.0))

    # --- at a scrape ---

    async def refresh(self) -> None:
        """Read the database's figures if the cached ones are older than db_cache_s."""
        if self.readiness is not None:
            self._ready = (await self.readiness.state()).ready
        if time.monotonic() - self._figures_at < self.db_cache_s:
            return
        try:
            self._figures = await self._figures_source()
            self._db_up = True
        except Exception as e:
            log.warning("metrics: could not read the database's figures: %s", e)
            self._figures, self._db_up = None, False
        self._figures_at = time.monotonic()

    async def render(self) -> bytes:
        await self.refresh()
        return _generate(self.registry)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class _Scraped(Collector):
    """The figures read at a scrape: the daemon's own state and the cached database figures."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m, live = self.m, self.m.live
        yield _gauge("callcontrol_ready", "1 when FastAGI, AMI and the database are up.", m._ready)
        yield _gauge("callcontrol_ami_connected", "1 when logged in to AMI.", live.ami_connected())
        yield _gauge("callcontrol_agi_sessions", "FastAGI connections open.", live.agi_sessions())
        yield _gauge(
            "callcontrol_recordings_ingesting",
            "Recordings waiting for compression now (the recording worker's backlog).",
            live.recordings_ingesting(),
        )
        yield CounterMetricFamily(
            "callcontrol_recording_ingest_failures",
            "Recording ingests that failed (the audio stays in the spool) since the recording "
            "worker started.",
            value=live.recording_failures(),
        )
        yield CounterMetricFamily(
            "callcontrol_decision_store_failures",
            "Decisions the database could not store (each such call was refused) since the start.",
            value=live.decision_store_failures(),
        )
        yield _gauge(
            "callcontrol_database_up", "1 when the last figures query succeeded.", m._db_up
        )
        f = m._figures
        if f is None:
            return
        yield _gauge("callcontrol_calls_live", "Allowed calls not yet ended.", f.calls_live)
        yield _gauge(
            "callcontrol_settlement_backlog", "Calls ended and not yet settled.", f.unsettled
        )
        oldest = 0.0
        if f.oldest_unsettled_end is not None:
            oldest = max((live.clock() - f.oldest_unsettled_end).total_seconds(), 0.0)
        yield _gauge(
            "callcontrol_settlement_backlog_oldest_seconds",
            "How long the oldest call ended and not settled has waited (0: none).",
            oldest,
        )
        yield _gauge(
            "callcontrol_recordings_pending",
            "Settled, accepted, recordable calls with neither a recording nor a missing mark.",
            f.recordings_pending,
        )
        yield _gauge(
            "callcontrol_recordings_missing",
            "Calls that should have a recording and have none (callcontrol recordings missing).",
            f.recordings_missing,
        )
        pence = GaugeMetricFamily(
            "callcontrol_ledger_pence",
            "Sum of the ledger's entries by kind, in pence.",
            labels=["kind"],
        )
        entries = GaugeMetricFamily(
            "callcontrol_ledger_entries", "Number of ledger entries by kind.", labels=["kind"]
        )
        for kind in sorted(f.ledger_pence):
            pence.add_metric([kind], f.ledger_pence[kind])
            entries.add_metric([kind], f.ledger_entries.get(kind, 0))
        yield pence
        yield entries
        yield _gauge(
            "callcontrol_accounts_balance_pence",
            "All accounts' balances together.",
            f.balance_pence,
        )
        yield _gauge(
            "callcontrol_accounts_reserved_pence",
            "Credit reserved by calls in progress, all accounts together.",
            f.reserved_pence,
        )


# --- the routes --------------------------------------------------------------------------------

METRICS = web.AppKey("metrics", Metrics)
READINESS = web.AppKey("readiness", Readiness)
METRICS_TOKEN = web.AppKey("metrics_token", str)


async def metrics_handler(request: web.Request) -> web.Response:
    token = request.app.get(METRICS_TOKEN)
    if token:
        given = bearer_token(request.headers.get("Authorization")) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response(
                {"error": "a valid metrics token is needed ([metrics] token_file)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="callcontrol-metrics"'},
            )
    body = await request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def ready_handler(request: web.Request) -> web.Response:
    st = await request.app[READINESS].state()
    data = {"ready": st.ready, "agi": st.agi, "ami": st.ami, "db": st.db}  # why: in the log
    return web.json_response(data, status=200 if st.ready else 503)


def add_routes(
    app: web.Application,
    readiness: Readiness,
    metrics: Metrics | None = None,
    token: str = "",
) -> None:
    """GET /ready always; GET /metrics when ``metrics`` is given (with ``token``: only for a
    request that presents it)."""
    app[READINESS] = readiness
    app.router.add_get("/ready", ready_handler)
    if metrics is not None:
        app[METRICS] = metrics
        app[METRICS_TOKEN] = token
        app.router.add_get("/metrics", metrics_handler)
