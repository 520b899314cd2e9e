"""Recordings for staff, end to end: a call recorded by the real lab (SIPp handset and called
party, Asterisk's MixMonitor, the daemon's ingest) is found by search, served to a token holder
and played in a real headless Chromium from the console; every play and download is audited
under the person's name; a tampered file is refused."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.e2e.browser import Console, login, screenshot, wait
from tests.e2e.conftest import E2E
from tests.e2e.test_billing import settled
from tests.e2e.test_cell_calls import LONDON, provision
from tests.e2e.test_recording import recording_of, store_dir, token

pytestmark = pytest.mark.e2e

API = "http://127.0.0.1:8188"


def bearer(e2e: E2E, role: str) -> str:
    return Path(token(e2e, role)).read_text().strip()


def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(API + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def recorded_call(e2e: E2E, hold: float = 6) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A call placed from a SIPp handset and recorded: (prisoner, its settled call, its
    recording row)."""
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "02079460000", hold)
    assert call["outcome"] == "connected", call
    s = settled(e2e, call)
    rec = recording_of(e2e, s["id"])
    assert rec is not None, "no recording stored"
    return prisoner, s, rec


def audit_rows(e2e: E2E, action: str, recording_id: object) -> list[dict[str, Any]]:
    rows = e2e.sql(
        "SELECT * FROM audit_log WHERE action = $1 AND target = $2 ORDER BY id",
        action,
        f"recording {recording_id}",
    )
    return [dict(r) for r in rows]


def test_the_api_finds_serves_and_audits_a_recorded_call(e2e: E2E) -> None:
    prisoner, call, rec = recorded_call(e2e)
    officer = bearer(e2e, "officer")
    auth = {"Authorization": f"Bearer {officer}"}
    for headers in ({}, {"Authorization": "Bearer not-a-token-at-all-0123456789"}):
        for path in ("/recordings", f"/recordings/{rec['id']}/audio"):
            status, _, _ = get(path, headers)
            assert status == 401, (path, headers)
    status, _, body = get(f"/recordings?prisoner={prisoner}", auth)
    assert status == 200, body
    (found,) = json.loads(body)["recordings"]
    assert found["recording_id"] == rec["id"] and found["call_id"] == call["id"]
    status, _, body = get(f"/recordings?call_id={call['id']}", auth)
    assert [r["recording_id"] for r in json.loads(body)["recordings"]] == [rec["id"]]
    stored = (store_dir(e2e) / str(rec["file_name"])).read_bytes()
    status, headers, body = get(f"/recordings/{rec['id']}/audio?download=1", auth)
    assert status == 200 and body == stored
    assert headers["Content-Type"] == "audio/ogg"
    assert headers["Content-Disposition"].startswith("attachment;")
    status, headers, body = get(f"/recordings/{rec['id']}/audio", auth | {"Range": "bytes=100-"})
    assert status == 206 and body == stored[100:]
    (download,) = audit_rows(e2e, "download", rec["id"])
    (play,) = audit_rows(e2e, "play", rec["id"])
    for row in (download, play):
        assert str(row["actor"]).startswith("E2E Officer ") and row["role"] == "officer"


def test_a_tampered_recording_is_refused(e2e: E2E) -> None:
    _, _, rec = recorded_call(e2e, hold=3)
    auth = {"Authorization": f"Bearer {bearer(e2e, 'admin')}"}
    path = store_dir(e2e) / str(rec["file_name"])
    original = path.read_bytes()
    with tampered(path, original):
        status, headers, body = get(f"/recordings/{rec['id']}/audio?download=1", auth)
        assert status == 500 and headers["Content-Type"].startswith("application/json")
        assert "altered" in json.loads(body)["error"]
        assert audit_rows(e2e, "download", rec["id"]) == []
        assert audit_rows(e2e, "recording_tampered", rec["id"])
        log = (e2e.config.parent / "daemon.log").read_text()
        assert f"RECORDING TAMPERED: recording {rec['id']}" in log
    status, _, body = get(f"/recordings/{rec['id']}/audio", auth)
    assert status == 200 and body == original  # put back as it was: served again


@contextlib.contextmanager
def tampered(path: Path, original: bytes) -> Iterator[None]:
    """The file with one byte changed, put back afterwards (other tests verify the store)."""
    path.chmod(0o600)
    changed = bytearray(original)
    changed[-10] ^= 0xFF
    path.write_bytes(bytes(changed))
    try:
        yield
    finally:
        path.write_bytes(original)
        path.chmod(0o400)


# --- in the browser ---------------------------------------------------------------------------

PLAY_AND_WAIT = """
const done = arguments[0];
const player = document.getElementById('player');
player.muted = true;  // headless: nothing to hear, and the page's own audio stays quiet
player.play().catch(e => done({problem: 'play() refused: ' + e}));
const started = Date.now();
(function poll() {
  const e = player.error;
  if (e) return done({problem: 'media error ' + e.code + ' ' + e.message});
  if (player.readyState >= 3 && isFinite(player.duration) && player.currentTime > 0)
    return done({readyState: player.readyState, duration: player.duration});
  if (Date.now() - started > 15000)
    return done({problem: 'not playable in 15 s: readyState ' + player.readyState});
  setTimeout(poll, 100);
})();
"""


def search_in_console(driver: WebDriver, console: Console, prisoner: str) -> None:
    driver.get(console.url("/recordings"))
    driver.find_element(By.ID, "f-prisoner").send_keys(prisoner)
    driver.find_element(By.ID, "search-button").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "results")))


def test_a_recorded_call_is_found_played_and_downloaded_in_the_console(
    driver: WebDriver, console: Console, tmp_path: Path
) -> None:
    e2e = console.e2e
    prisoner, call, rec = recorded_call(e2e, hold=6)
    officer = console.accounts["officer"]
    login(driver, console, officer)
    search_in_console(driver, console, prisoner)
    rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert [r.get_attribute("id") for r in rows] == [f"recording-{rec['id']}"]
    screenshot(driver, "console-recordings")
    rows[0].find_element(By.CSS_SELECTOR, "a.open").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "player")))
    assert driver.find_element(By.ID, "call-id").text == str(call["id"])
    assert audit_rows_for(console, "play", rec["id"]) == []  # showing the page is not a play
    driver.find_element(By.ID, "player").click()  # a person's gesture: the page may play
    played = driver.execute_async_script(PLAY_AND_WAIT)
    assert "problem" not in played, played
    # The element's duration is the call's talk time (acceptance to hang-up), within a second.
    assert abs(float(played["duration"]) - int(call["talk_seconds"])) <= 1.0, (played, call)
    screenshot(driver, "console-recording")
    (play,) = audit_rows_for(console, "play", rec["id"])
    assert (play["actor"], play["role"]) == (officer.username, "officer")
    # The download: Chromium saves it into a folder of this test's.
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    driver.find_element(By.ID, "download").click()
    name = f"recording-{rec['id']}-call-{call['id']}.ogg"
    wait(driver).until(lambda _: (tmp_path / name).exists())
    stored = (store_dir(e2e) / str(rec["file_name"])).read_bytes()
    wait(driver).until(lambda _: (tmp_path / name).read_bytes() == stored)
    (download,) = audit_rows_for(console, "download", rec["id"])
    assert (download["actor"], download["role"]) == (officer.username, "officer")


def audit_rows_for(console: Console, action: str, recording_id: object) -> list[dict[str, Any]]:
    return audit_rows(console.e2e, action, recording_id)


def test_an_auditor_plays_but_a_tampered_recording_is_refused_in_the_console(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    prisoner, _, rec = recorded_call(e2e, hold=3)
    auditor = console.accounts["auditor"]
    login(driver, console, auditor)
    driver.get(console.url(f"/recordings/{rec['id']}"))
    driver.find_element(By.ID, "player").click()
    assert "problem" not in driver.execute_async_script(PLAY_AND_WAIT)
    (play,) = audit_rows_for(console, "play", rec["id"])
    assert (play["actor"], play["role"]) == (auditor.username, "auditor")
    path = store_dir(e2e) / str(rec["file_name"])
    with tampered(path, path.read_bytes()):
        driver.get(console.url(f"/recordings/{rec['id']}"))
        refused = driver.find_element(By.ID, "refused").text
        assert "altered" in refused and "nothing was served" in refused
        assert driver.find_elements(By.ID, "player") == []  # no player offered
        screenshot(driver, "console-recording-tampered")
        driver.get(console.url(f"/recordings/{rec['id']}/audio?download=1"))
        assert "altered" in driver.page_source
    assert len(audit_rows_for(console, "play", rec["id"])) == 1  # nothing more served
    assert audit_rows_for(console, "download", rec["id"]) == []
    refusals = audit_rows_for(console, "recording_tampered", rec["id"])
    assert len(refusals) == 2 and {r["actor"] for r in refusals} == {auditor.username}
