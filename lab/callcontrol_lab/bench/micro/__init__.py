"""FastAGI micro-benchmark, without Asterisk: decisions per second and latency of our handler.

Our side is the daemon's FastAGI server with its two routes wired as ``callcontrol.app`` wires
them (``build_authoriser``, ``SqlCallStore``, ``CellCallHandler``, ``Settler`` on
``SqlSettlementStore``, ``CallEndHandler``), on a real database that the benchmark migrates and
fills itself through the operator's own services (``callcontrol/services``):
cells, one prisoner each with a PIN, an approved social contact and credit. Left out, because
they are not on the path of a FastAGI request: the AMI session, the supervision API and the
recordings worker (a process of its own, `callcontrol recordings worker`, which would look for
audio that no call made).

The other side plays Asterisk: for each call it connects, sends the ``agi_`` environment of
``AGI(agi://.../SECRET/cell-call,...)`` (the server's FastAGI secret, made for the run, first
in the path as the lab's CC_AGI_URL puts it; the arguments of [cc-decide] in dialplan/cells.conf)
and answers every command as Asterisk would (``GET DATA`` with the prisoner's PIN,
``SET VARIABLE`` with ``200 result=1``, anything else ``200 result=0``) until the server
closes. By default it runs in a process of its own, so that its Python work does not eat into
the server's event loop.

Each allowed call opens a call row and reserves credit, and a prisoner may have one open call:
the calls therefore go in rounds of at most one call per cell. Each round first decides its
calls (``cell-call``, timed: decisions per second; the end of a round has fewer than
``concurrency`` calls in flight, which the default of ten cells per concurrent call keeps
small), then settles them through the real
``call-end`` route with the arguments of the hangup handler in ``dialplan/cells.conf``
(``[cc-call-end]``): accepted, talked ``talk_seconds``, the caller hung up (timed apart:
settlements per second). A call that is not allowed, or any error, breaks the run
(``BrokenBenchmark``): it is never counted as a decision. At the end, the database is checked:
every call allowed, settled and charged exactly once, no money still reserved, every account
equal to its ledger.

The baseline is the same FastAgiServer with a route that answers at once (one ``SET VARIABLE
CC_ANSWER`` with an allow of the daemon's shape), played by the same client: what the protocol,
the server and the client cost by themselves. Each conversation's AGI commands are counted
(``agi_commands_per_request``): on a real Asterisk each is a round trip to the channel's thread.

The package, one job a module: ``errors`` (BenchmarkError, BrokenBenchmark), ``provision``
(the data, and scratch databases), ``client`` (Asterisk, scripted), ``server`` (the routes and
the FastAgiServer), ``stats`` (latencies, CPU, database use), ``checks`` (verdicts, and the
database afterwards), ``runner`` (``run_micro``), ``report`` (the table for people) and ``cli``
(``main``, run by ``__main__``). The command:

    .venv/bin/python -m callcontrol_lab.bench.micro --help
"""

from __future__ import annotations

from callcontrol_lab.bench.micro.checks import check_database, verdict
from callcontrol_lab.bench.micro.cli import main, parser
from callcontrol_lab.bench.micro.client import (
    CLIENT_TIMEOUT_S,
    Client,
    Exchange,
    PhaseResult,
    Request,
    converse,
    environment,
    play,
    play_in_process,
    reply_to,
)
from callcontrol_lab.bench.micro.errors import BenchmarkError, BrokenBenchmark
from callcontrol_lab.bench.micro.provision import (
    CELL_PREFIX,
    CHANGED_BY,
    CONTACT_DIALLED,
    CONTACT_LABEL,
    CREDIT_PENCE,
    PROVISION_BATCH,
    Inmate,
    create_scratch_database,
    drop_scratch_database,
    provision,
)
from callcontrol_lab.bench.micro.report import format_table, profile_summary
from callcontrol_lab.bench.micro.runner import GOAL_DECISIONS_PER_S, run_micro
from callcontrol_lab.bench.micro.server import answer_at_once, build_routes
from callcontrol_lab.bench.micro.stats import Meter, Span, Stats

__all__ = [
    "CELL_PREFIX",
    "CHANGED_BY",
    "CLIENT_TIMEOUT_S",
    "CONTACT_DIALLED",
    "CONTACT_LABEL",
    "CREDIT_PENCE",
    "GOAL_DECISIONS_PER_S",
    "PROVISION_BATCH",
    "BenchmarkError",
    "BrokenBenchmark",
    "Client",
    "Exchange",
    "Inmate",
    "Meter",
    "PhaseResult",
    "Request",
    "Span",
    "Stats",
    "answer_at_once",
    "build_routes",
    "check_database",
    "converse",
    "create_scratch_database",
    "drop_scratch_database",
    "environment",
    "format_table",
    "main",
    "parser",
    "play",
    "play_in_process",
    "profile_summary",
    "provision",
    "reply_to",
    "run_micro",
    "verdict",
]
