"""/ready and /metrics of the daemon beside the real Asterisk lab: one call connected, talked
and hung up moves the decision and settlement figures as Prometheus reads them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callcontrol.adapters.agi.secret import read_secret_file
from tests.e2e.conftest import E2E
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

HTTP = "http://127.0.0.1:8188"  # the e2e configuration's [http] port


def scrape(e2e: E2E) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    token = read_secret_file(e2e.config.parent / "var" / "metrics-token")
    request = urllib.request.Request(
        f"{HTTP}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def ready_within(seconds: float) -> dict[str, bool]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{HTTP}/ready", timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # 503: not ready yet
            answer = json.loads(e.read())
        except urllib.error.URLError as e:  # the HTTP server is not up yet
            answer = {"error": str(e.reason)}
        assert time.monotonic() < deadline, f"not ready within {seconds}s: {answer}"
        time.sleep(0.2)


def test_ready_and_metrics_follow_a_real_call(e2e: E2E) -> None:
    # The session's daemon was taken as started once FastAGI listened: ready follows shortly.
    assert ready_within(20) == {"ready": True, "agi": True, "ami": True, "db": True}
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    allowed = (
        "callcontrol_decisions_total",
        (("outcome", "allow"), ("reason", "approved_contact")),
    )
    lag = ("callcontrol_settlement_lag_seconds_count", ())
    before = scrape(e2e)
    assert before[("callcontrol_ami_connected", ())] == 1
    call = e2e.call(cell, pin, "02079460000", 2)
    assert call["outcome"] == "connected", call
    deadline = time.monotonic() + 10  # settled from the hangup handler, at once
    while True:
        after = scrape(e2e)
        if after[lag] > before[lag]:
            break
        assert time.monotonic() < deadline, f"not settled: {after}"
        time.sleep(0.5)
    assert after[allowed] == before[allowed] + 1
    assert (
        after[("callcontrol_decision_seconds_count", ())]
        > before[("callcontrol_decision_seconds_count", ())]
    )
    # The hangup handler reports the end at once: settled within a second or two of it.
    assert (
        after[("callcontrol_settlement_lag_seconds_bucket", (("le", "5.0"),))]
        > before[("callcontrol_settlement_lag_seconds_bucket", (("le", "5.0"),))]
    )
    # (The database's figures, cached [metrics] db_cache_s, are tested in tests/db.)
    assert after[("callcontrol_database_up", ())] == 1
