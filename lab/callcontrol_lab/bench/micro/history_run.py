"""The micro-benchmark on an empty database and on one holding a prison's history, one after
the other on the same PostgreSQL server: is the cost of a decision flat as history grows?"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from callcontrol_lab.bench.history import HistorySpec
from callcontrol_lab.bench.history_cache import database_from_template, history_template
from callcontrol_lab.bench.micro.errors import BenchmarkError
from callcontrol_lab.bench.micro.provision import create_scratch_database, drop_scratch_database
from callcontrol_lab.bench.micro.runner import run_micro


def _rate(report: dict[str, Any], what: str) -> float:
    return float(report["ours"][what])


async def run_micro_with_history(
    server_url: str,
    spec: HistorySpec,
    progress: Callable[[str], None] = lambda _: None,
    keep_going: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """``run_micro(**options)`` on a new empty database of the server of ``server_url`` (its
    user needs CREATEDB), then on a copy of ``spec``'s history (built, restored or found:
    history_cache.py). Returns the empty run's report with ``"history"``: how the history was
    had and how long it took, the history run's report, and the ratios of their rates.
    ``keep_going``: when the history cannot be built or its run breaks, the empty run's report
    with ``"history_error"`` instead of the exception (make bench: an hour's figures are kept).
    """
    empty_url = await create_scratch_database(server_url)
    try:
        progress("the micro-benchmark on an empty database")
        report = await run_micro(empty_url, progress=progress, **options)
    finally:
        await drop_scratch_database(server_url, empty_url)
    try:
        report["history"] = await _on_history(server_url, spec, progress, report, options)
    except (BenchmarkError, SQLAlchemyError, OSError, subprocess.CalledProcessError) as e:
        if not keep_going:
            raise
        report["history_error"] = f"{type(e).__name__}: {e}"[:2000]
        progress(f"the history's run failed: {report['history_error']}")
    return report


async def _on_history(
    server_url: str,
    spec: HistorySpec,
    progress: Callable[[str], None],
    report: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    template = await history_template(server_url, spec, progress)
    progress(f"history: {template.how}, {template.seconds:.0f} s")
    history_url = await database_from_template(server_url, template.name)
    try:
        progress("the micro-benchmark on the history's database")
        # The baseline (no database) and the profile are the empty run's.
        again = {**options, "baseline": False, "profile_path": None}
        run = await run_micro(history_url, progress=progress, history=True, **again)
    finally:
        await drop_scratch_database(server_url, history_url)

    def ratio(what: str) -> float | None:
        empty = _rate(report, what)
        return round(_rate(run, what) / empty, 3) if empty > 0 else None

    return {
        "prisoners": spec.prisoners,
        "rows_asked": spec.rows,
        "days": spec.days,
        "how": template.how,
        "seconds": template.seconds,
        "details": template.details,
        "run": run,
        "ratio_decisions": ratio("decisions_per_s"),
        "ratio_settlements": ratio("settlements_per_s"),
    }
