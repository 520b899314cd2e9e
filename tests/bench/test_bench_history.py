"""The history generator, run small on PostgreSQL: the counts it promises, every constraint of
the schema (the database checks them as the rows go in), and money that adds up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol_lab.bench.history import (
    TOPUP_TO_PENCE,
    HistorySpec,
    build_history,
    charged_calls,
    history_sql,
)
from callcontrol_lab.bench.history_cache import (
    database_from_template,
    history_key,
    history_template,
)
from callcontrol_lab.bench.micro import drop_scratch_database, run_micro
from callcontrol_lab.bench.micro.errors import BenchmarkError

SMALL = HistorySpec(prisoners=100, rows=20_000, days=60)


def scalar(url: str, sql: str) -> Any:
    async def run() -> Any:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_the_spec_fills_its_rows() -> None:
    spec = HistorySpec()
    assert spec.total(spec.calls) <= spec.rows < spec.total(spec.calls + 1)
    assert 1_500_000 < spec.calls < 2_000_000  # a few calls a prisoner a day
    assert 2 <= spec.calls / spec.prisoners / spec.days <= 4
    assert charged_calls(20) == 20 - 2 - 1
    with pytest.raises(BenchmarkError):
        HistorySpec(prisoners=10, rows=50)
    with pytest.raises(BenchmarkError):  # a call every few minutes does not fit
        HistorySpec(prisoners=1, rows=100_000, days=7)
    assert all(isinstance(s, str) and s.strip() for s in history_sql(SMALL))


def test_small_history_is_consistent(pg_database: str) -> None:
    spec = SMALL
    done = asyncio.run(build_history(pg_database, spec))
    t = done["tables"]
    assert t["prisoners"] == t["cells"] == t["accounts"] == 100
    assert t["contacts"] == 400
    assert t["calls"] == t["reservations"] == spec.calls
    assert t["call_decisions"] == spec.calls + spec.refusals
    charges = scalar(pg_database, "SELECT count(*) FROM ledger_entries WHERE kind = 'charge'")
    topups = scalar(pg_database, "SELECT count(*) FROM ledger_entries WHERE kind = 'topup'")
    assert charges == charged_calls(spec.calls)
    assert 100 <= topups <= spec.topups_at_most
    assert 0.9 * spec.rows <= done["rows"] <= spec.rows
    assert done["generated_s"] >= 0
    # Calls: every one ended and settled, after its decision, never two at once for a prisoner.
    assert scalar(pg_database, "SELECT count(*) FROM calls WHERE ended_at IS NULL") == 0
    assert scalar(pg_database, "SELECT count(*) FROM calls WHERE settled_at IS NULL") == 0
    assert scalar(pg_database, "SELECT count(*) FROM calls WHERE ended_at > now()") == 0
    overlapping = """SELECT count(*) FROM (SELECT started_at, lag(settled_at) OVER
        (PARTITION BY prisoner_id ORDER BY started_at) AS before FROM calls) c
        WHERE before >= started_at"""
    assert scalar(pg_database, overlapping) == 0
    assert scalar(pg_database, "SELECT count(*) FROM reservations WHERE status = 'open'") == 0
    # Each call's charge is its ledger entry's, once; ids follow time.
    assert (
        scalar(
            pg_database,
            """SELECT count(*) FROM calls c JOIN ledger_entries e ON e.call_id = c.id
            WHERE e.amount_pence <> -c.charge_pence""",
        )
        == 0
    )
    assert scalar(pg_database, "SELECT count(*) FROM calls WHERE charge_pence > 0") == charges
    assert (
        scalar(
            pg_database,
            """SELECT count(*) FROM (SELECT at, lag(at) OVER (ORDER BY id) AS before
            FROM call_decisions) d WHERE before > at""",
        )
        == 0
    )
    # Money: every account equal to its ledger, never below 0 or above the cap.
    assert scalar(pg_database, "SELECT min(balance_after) FROM ledger_entries") >= 0
    assert scalar(pg_database, "SELECT max(balance_after) FROM ledger_entries") <= TOPUP_TO_PENCE

    async def verify_all() -> None:
        engine = make_engine(pg_database)
        try:
            async with session_factory(engine)() as s:
                for pid in range(1, 101):
                    await ledger.verify_account(s, pid)
        finally:
            await engine.dispose()

    asyncio.run(verify_all())
    # The sequences are past the ids given: the daemon's next rows go in.
    for table in ("calls", "call_decisions", "ledger_entries", "prisoners", "cells"):
        assert scalar(pg_database, f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))") > (
            scalar(pg_database, f"SELECT max(id) FROM {table}")
        )


def test_refuses_a_database_with_prisoners(pg_database: str) -> None:
    asyncio.run(build_history(pg_database, HistorySpec(prisoners=5, rows=500, days=30)))
    with pytest.raises(BenchmarkError, match="empty database"):
        asyncio.run(build_history(pg_database, HistorySpec(prisoners=5, rows=500, days=30)))


def test_the_micro_benchmark_decides_for_the_history_s_prisoners(pg_database: str) -> None:
    asyncio.run(build_history(pg_database, SMALL))
    report = asyncio.run(
        run_micro(
            pg_database, calls=20, concurrency=4, warmup=2, cells=10, separate_process=False,
            baseline=False, history=True,
        )
    )  # fmt: skip
    assert report["data"] == "a history's prisoners" and report["ours"]["outcomes"] == {"allow": 20}
    checks = report["checks"]  # the run's own rows only, the history's accounts verified whole
    assert checks["calls"] == checks["calls_settled"] == checks["charge_entries"] == 22
    assert checks["accounts_verified"] == 10
    assert scalar(pg_database, "SELECT count(*) FROM cells") == 100  # no new cells
    assert scalar(pg_database, "SELECT count(*) FROM calls") == SMALL.calls + 22


def test_the_history_is_built_once_then_found_then_restored(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = HistorySpec(prisoners=20, rows=3000, days=30)
    said: list[str] = []
    first = asyncio.run(history_template(pg_url, spec, said.append, cache=tmp_path))
    try:
        assert first.how == "generated" and first.details["tables"]["prisoners"] == 20
        dumps = list(tmp_path.glob("history-*.dump"))
        assert [d.name for d in dumps] == [f"history-{history_key(spec)}.dump"]
        again = asyncio.run(history_template(pg_url, spec, said.append, cache=tmp_path))
        assert again.name == first.name and again.how == "template on the server"
        copy_url = asyncio.run(database_from_template(pg_url, first.name))
        try:
            assert scalar(copy_url, "SELECT count(*) FROM calls") == spec.calls
        finally:
            asyncio.run(drop_scratch_database(pg_url, copy_url))
        # A new server (as each make bench starts one): restored from the dump.
        asyncio.run(drop_scratch_database(pg_url, f"postgresql+asyncpg:///{first.name}"))
        restored = asyncio.run(history_template(pg_url, spec, said.append, cache=tmp_path))
        assert restored.how.startswith("restored from")
        assert restored.details["tables"] == first.details["tables"]
    finally:
        asyncio.run(drop_scratch_database(pg_url, f"postgresql+asyncpg:///{first.name}"))
    assert any("generating" in s for s in said)


def test_make_bench_keeps_the_empty_run_when_the_history_fails(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callcontrol_lab.bench.micro import history_run

    async def no_room(*_: Any, **__: Any) -> None:
        raise BenchmarkError("no room for the history")

    monkeypatch.setattr(history_run, "history_template", no_room)
    options: dict[str, Any] = {
        "calls": 4, "concurrency": 2, "warmup": 0, "cells": 2, "separate_process": False,
        "baseline": False,
    }  # fmt: skip
    report = asyncio.run(
        history_run.run_micro_with_history(pg_url, SMALL, keep_going=True, **options)
    )
    assert report["ours"]["decisions"] == 4 and "history" not in report
    assert "no room for the history" in report["history_error"]
    with pytest.raises(BenchmarkError, match="no room"):
        asyncio.run(history_run.run_micro_with_history(pg_url, SMALL, **options))


def test_the_indexes_are_as_the_migrations_made_them(pg_database: str) -> None:
    listing = """SELECT string_agg(indexdef, ';' ORDER BY indexname) FROM pg_indexes
        WHERE schemaname = current_schema()"""
    before = scalar(pg_database, listing)
    asyncio.run(build_history(pg_database, HistorySpec(prisoners=5, rows=500, days=30)))
    assert scalar(pg_database, listing) == before
    assert "uq_calls_one_active_per_prisoner" in before
