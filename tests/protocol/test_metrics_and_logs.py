"""The daemon's /metrics and its JSON log lines, around calls decided over FastAGI.

`callcontrol run` is a real child process on SQLite, logging JSON lines; the scripted AMI peer
plays Asterisk's manager and a scripted Asterisk places cell calls over FastAGI. /metrics is
scraped over HTTP and read with prometheus_client's own parser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from callcontrol.adapters.agi.secret import read_secret_file
from tests.services.cell_call_args import agi_args

from .agi_peer import ScriptedAsterisk, env_bytes
from .ami_peer import ScriptedAmi
from .daemon_proc import RunningDaemon, prepare_database, running_daemon, write_config

CELL, PRISONER, PIN = "A1-01", "A1234BC", "2468"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value, parsed by prometheus_client."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def decisions(scrape: dict, outcome: str, reason: str) -> float:
    return scrape[("callcontrol_decisions_total", (("outcome", outcome), ("reason", reason)))]


async def place_call(port: int, secret: str, uniqueid: str, pins: list[str]) -> list[str]:
    """A cell call as cells.conf makes it: keys each PIN in turn, answers every other command
    with success; returns the commands the daemon sent."""
    peer = await ScriptedAsterisk.connect(port)
    try:
        args = agi_args(CELL, "02079460000", f"{uniqueid}@handset", uniqueid)
        await peer.send(env_bytes("cell-call", args=args, secret=secret))
        commands: list[str] = []
        while True:
            try:
                command = await peer.command(within=10)
            except EOFError:
                return commands
            commands.append(command)
            if command.startswith("GET DATA"):
                await peer.reply(f"200 result={pins.pop(0)}")
            else:
                await peer.reply("200 result=1")
    finally:
        peer.close()


async def scrape(url: str, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as web, web.get(url, headers=headers) as r:
        return r.status, await r.text()


async def test_metrics_count_decisions_and_json_lines_name_the_call(tmp_path: Path) -> None:
    ami = ScriptedAmi()
    await ami.start()
    config = write_config(tmp_path, ami.port, '[log]\nformat = "json"\n[metrics]\ndb_cache_s = 0')
    await prepare_database(tmp_path, {CELL: (PRISONER, PIN)})
    try:
        async with running_daemon(config, {}, "--log-level", "DEBUG") as daemon:
            agi = int((await daemon.wait_for_line(r"FastAGI listening on [\d.]+:(\d+)"))[1])
            http = (await daemon.wait_for_line(r"API listening on (http://[\d.:]+)"))[1]
            await daemon.wait_for_line(r'"ready: deciding calls')
            await _check_metrics(daemon, agi, f"{http}/metrics")
            _check_json_lines(daemon)
    finally:
        await ami.stop()
        await ScriptedAsterisk.close_all()


async def _check_metrics(daemon: RunningDaemon, agi: int, url: str) -> None:
    token = read_secret_file(daemon.config.parent / "var/metrics-token")
    # No token, or another one: nothing is shown.
    for given in (None, "0" * 64):
        status, body = await scrape(url, given)
        assert status == 401 and "callcontrol_" not in body
    status, body = await scrape(url, token)
    assert status == 200
    before = samples(body)
    assert decisions(before, "refuse", "not_approved") == 0
    assert decisions(before, "allow", "approved_contact") == 0
    assert before[("callcontrol_ami_connected", ())] == 1
    assert before[("callcontrol_ready", ())] == 1
    assert before[("callcontrol_calls_live", ())] == 0
    assert before[("callcontrol_decision_seconds_count", ())] == 0
    # One call keys a wrong PIN, then the right one, and dials a number not on the list.
    commands = await place_call(agi, daemon.secret, "1733380000.41", ["1111", PIN])
    assert commands[-1] == 'SET VARIABLE CC_ANSWER "refuse:not_approved"', commands
    # Another hangs up at the PIN prompt.
    await place_call(agi, daemon.secret, "1733380000.42", ["-1"])
    status, body = await scrape(url, token)
    after = samples(body)
    assert decisions(after, "refuse", "not_approved") == 1
    assert decisions(after, "refuse", "caller_hung_up") == 1
    assert decisions(after, "allow", "approved_contact") == 0
    # The latency is observed where the number was decided (the hang-up never got there).
    assert after[("callcontrol_decision_seconds_count", ())] == 1
    assert 0 < after[("callcontrol_decision_seconds_sum", ())] < 5
    assert after[("callcontrol_database_up", ())] == 1
    assert after[("callcontrol_recordings_missing", ())] == 0
    assert after[("callcontrol_recording_ingest_failures_total", ())] == 0
    assert after[("callcontrol_decision_store_failures_total", ())] == 0
    daemon.lines.append("-- calls placed --")


def _check_json_lines(daemon: RunningDaemon) -> None:
    lines = daemon.lines[: daemon.lines.index("-- calls placed --")]
    parsed = [json.loads(line) for line in lines]  # every line of the daemon is JSON
    assert all({"ts", "level", "logger", "message"} <= set(p) for p in parsed)
    for uniqueid in ("1733380000.41", "1733380000.42"):
        # What was logged while handling the request: from its start on FastAGI to its end.
        about = [p for p in parsed if uniqueid in p["message"] or p.get("call") == uniqueid]
        assert len(about) >= 2, about
        bad = [p for p in about if p.get("call") != uniqueid]
        assert not bad, bad
    # Every line of the loggers that handle calls names one of the two calls (nothing else
    # happened on them meanwhile), whatever its message says.
    handling = ("callcontrol.agi", "callcontrol.decision", "callcontrol.settlement")
    lines_of_calls = [p for p in parsed if p["logger"].startswith(handling)]
    lines_of_calls = [p for p in lines_of_calls if "listening on" not in p["message"]]
    assert len(lines_of_calls) >= 4
    assert {p.get("call") for p in lines_of_calls} == {"1733380000.41", "1733380000.42"}
    decided = [p for p in parsed if re.match(r"REFUSE call from handset", p["message"])]
    assert [p["call"] for p in decided] == ["1733380000.41", "1733380000.42"]
    # Lines about no call carry no call id.
    assert not any("call" in p for p in parsed if "FastAGI listening" in p["message"])
