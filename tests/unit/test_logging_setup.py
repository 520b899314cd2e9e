"""JSON log lines: their fields, the call bound in the context (and only there), exceptions;
the [log] and [metrics] settings' checks."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest

from callcontrol import logging_setup
from callcontrol.config import ConfigError, load_settings


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logging_setup.configure("json", "DEBUG")
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def parsed(out: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_each_task_logs_under_its_own_call(lines: io.StringIO) -> None:
    log = logging.getLogger("callcontrol.test")

    async def handle(uniqueid: str) -> None:
        logging_setup.bind_call(uniqueid)
        await asyncio.sleep(0)
        log.info("deciding %s", "it")
        await asyncio.sleep(0)
        log.warning("done")

    log.info("before any call")
    await asyncio.gather(handle("1.1"), handle("2.2"))
    with logging_setup.about_call("3.3"):
        log.info("settling")
    log.info("after")
    ours = [p for p in parsed(lines) if p["logger"] == "callcontrol.test"]
    got = [(p["message"], p.get("call")) for p in ours]
    assert got[0] == ("before any call", None) and got[-1] == ("after", None)
    assert sorted(got[1:5]) == [("deciding it", "1.1"), ("deciding it", "2.2"),
                                ("done", "1.1"), ("done", "2.2")]  # fmt: skip
    assert got[5] == ("settling", "3.3")
    first = ours[0]
    assert first["level"] == "INFO" and first["logger"] == "callcontrol.test"
    assert first["ts"].endswith("Z") and len(first["ts"]) == 24


def test_exceptions_and_odd_messages_stay_one_json_line(lines: io.StringIO) -> None:
    log = logging.getLogger("callcontrol.test")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        log.exception("failed on %r", "x\ny")
    [a] = parsed(lines)
    assert a["message"] == "failed on 'x\\ny'" and "ValueError: bad" in a["exc"]
    assert len(lines.getvalue().splitlines()) == 1
    # A wrong format string must not lose the line.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d calls", ("many",), None)
    assert "many" in json.loads(logging_setup.JsonFormatter().format(record))["message"]


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"CALLCONTROL_LOG_FORMAT": "xml"}, "[log] format"),
        ({"CALLCONTROL_LOG_LEVEL": "LOUD"}, "[log] level"),
        ({"CALLCONTROL_METRICS_ACCESS": "anyone"}, "[metrics] access"),
        ({"CALLCONTROL_METRICS_DB_CACHE_S": "-1"}, "[metrics] db_cache_s"),
    ],
)
def test_bad_operations_settings_are_refused(env: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(why)):
        load_settings(env=env)
    assert load_settings(env={}).log.format == "text"
    assert load_settings(env={}).metrics.access == "token"
