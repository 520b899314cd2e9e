"""The metrics' database figures and the Metrics around them, on SQLite and PostgreSQL: a call
opened, ended, settled and its recording missing moves each figure as the operator expects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcontrol.adapters.db.call_store import SqlCallStore
from callcontrol.adapters.db.figures_store import SqlFigures
from callcontrol.adapters.db.settlement_store import SqlSettlementStore
from callcontrol.adapters.db.tables import MissingRecording
from callcontrol.adapters.http.metrics import Live, Metrics
from callcontrol.domain.call_end import CallEnd
from callcontrol.operator_services import session_services
from callcontrol.services.settle import Settler
from tests.conftest import TESTER
from tests.db import test_call_store
from tests.db.test_call_store import NOW, allow, the_prisoner

# test_call_store's fixtures: its database (SQLite and PostgreSQL), cell and prisoner.
db_url, store = test_call_store.db_url, test_call_store.store


@pytest.fixture
async def site(store: SqlCallStore) -> tuple[SqlCallStore, SqlFigures, object]:
    """test_call_store's cell and prisoner, with 500p topped up."""
    async with store.sessions.begin() as s:
        await session_services(s).accounts.topup(TESTER, "A1234BC", 500, "ref-1")
    return store, SqlFigures(store.sessions), store.sessions


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_figures_follow_a_call(site: tuple[SqlCallStore, SqlFigures, object]) -> None:
    calls, figures, sessions = site
    f = await figures.figures()
    assert (f.calls_live, f.unsettled, f.recordings_pending, f.recordings_missing) == (0, 0, 0, 0)
    assert f.ledger_pence == {"topup": 500} and f.ledger_entries == {"topup": 1}
    assert (f.balance_pence, f.reserved_pence) == (500, 0)

    prisoner = await the_prisoner(calls)
    assert await calls.record(allow(prisoner, "9.1", reserve=93)) is None
    f = await figures.figures()
    assert (f.calls_live, f.reserved_pence) == (1, 93)

    ended = NOW + timedelta(seconds=65)
    assert await calls.end_call("9.1", "16 Normal Clearing", ended)
    f = await figures.figures()
    assert (f.calls_live, f.unsettled, f.oldest_unsettled_end) == (0, 1, ended)

    settled_at = ended + timedelta(seconds=4)
    settler = Settler(SqlSettlementStore(sessions), free_drop_s=60, clock=lambda: settled_at)
    metrics = Metrics(
        Live(lambda: True, lambda: 0, lambda: 0, lambda: 0, clock=lambda: settled_at),
        figures.figures,
        db_cache_s=0,
    )
    settler.on_settled.append(metrics.settled)
    end = CallEnd("9.1", NOW + timedelta(seconds=5), ended, "ANSWER", "16", "PJSIP/A1-01-9.1")
    done = await settler.settle(end, source="test")
    assert done is not None and done.charge_pence == 3  # 60 s at 3.1p a minute
    f = await figures.figures()
    assert (f.unsettled, f.oldest_unsettled_end, f.reserved_pence) == (0, None, 0)
    assert f.ledger_pence == {"topup": 500, "charge": -3} and f.balance_pence == 497
    assert f.recordings_pending == 1  # accepted, recordable, nothing ingested yet

    async with sessions.begin() as s:  # type: ignore[attr-defined]
        call_id = done.call_id
        s.add(MissingRecording(call_id=call_id, detected_at=settled_at, why="no audio"))
    scraped = scrape((await metrics.render()).decode())
    assert scraped[("callcontrol_recordings_pending", ())] == 0
    assert scraped[("callcontrol_recordings_missing", ())] == 1
    assert scraped[("callcontrol_ledger_pence", (("kind", "charge"),))] == -3
    assert scraped[("callcontrol_ledger_entries", (("kind", "topup"),))] == 1
    assert scraped[("callcontrol_accounts_balance_pence", ())] == 497
    assert scraped[("callcontrol_calls_live", ())] == 0
    assert scraped[("callcontrol_database_up", ())] == 1
    # The settlement came 4 s after the end: in the histogram's 5 s bucket, not the 2 s one.
    assert scraped[("callcontrol_settlement_lag_seconds_count", ())] == 1
    assert scraped[("callcontrol_settlement_lag_seconds_bucket", (("le", "2.0"),))] == 0
    assert scraped[("callcontrol_settlement_lag_seconds_bucket", (("le", "5.0"),))] == 1


async def test_db_figures_are_cached_and_a_failure_is_shown() -> None:
    asked = []

    async def figures():  # noqa: ANN202
        asked.append(1)
        raise OSError("connection refused")

    metrics = Metrics(
        Live(lambda: False, lambda: 0, lambda: 0, lambda: 0, clock=lambda: NOW), figures, None, 60
    )
    first = scrape((await metrics.render()).decode())
    second = scrape((await metrics.render()).decode())
    assert len(asked) == 1  # within db_cache_s: not asked again
    assert first[("callcontrol_database_up", ())] == 0 == second[("callcontrol_database_up", ())]
    assert ("callcontrol_calls_live", ()) not in first  # no stale or invented figures
    assert first[("callcontrol_ami_connected", ())] == 0
