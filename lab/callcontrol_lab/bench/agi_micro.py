"""FastAGI micro-benchmark, without Asterisk: decisions per second and latency of our handler.

The command, and the names it always had; the benchmark itself is the package
``callcontrol_lab.bench.micro`` (its documentation says what it measures and how).

    .venv/bin/python -m callcontrol_lab.bench.agi_micro --help
"""

from __future__ import annotations

import sys

from callcontrol_lab.bench.micro import (
    CELL_PREFIX,
    CHANGED_BY,
    CLIENT_TIMEOUT_S,
    CONTACT_DIALLED,
    CONTACT_LABEL,
    CREDIT_PENCE,
    GOAL_DECISIONS_PER_S,
    PROVISION_BATCH,
    BenchmarkError,
    BrokenBenchmark,
    Client,
    Exchange,
    Inmate,
    Meter,
    PhaseResult,
    Request,
    Span,
    Stats,
    answer_at_once,
    build_routes,
    check_database,
    converse,
    create_scratch_database,
    drop_scratch_database,
    environment,
    format_table,
    main,
    parser,
    play,
    play_in_process,
    profile_summary,
    provision,
    reply_to,
    run_micro,
    verdict,
)
from callcontrol_lab.bench.micro.stats import _percentile

__all__ = [
    "_percentile",
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

if __name__ == "__main__":
    sys.exit(main())
