"""The live calls page in headless Chromium, against the real daemon, Asterisk and SIPp handsets:
a bridged call appears and goes by itself, an officer hears the handset's 1 kHz tone in the page
(Web Audio, through the daemon's AudioSocket), cuts a call, and is refused a privileged call;
an auditor can do neither."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from callcontrol_lab.simulator.verdict import ACCEPT_SETTLE_S
from tests.e2e.browser import Console, audit_rows, login, page_title, post_form, screenshot, wait
from tests.e2e.test_cell_calls import LONDON, provision
from tests.e2e.test_recording import call_in_background, live_call

pytestmark = pytest.mark.e2e

LEGAL = "02079460999"


@pytest.fixture(scope="module")
def caller(console: Console) -> tuple[str, str, str]:
    """One cell and prisoner for the module's calls (cell, prison number, PIN), with the London
    number approved and a legal contact (privileged) approved: provisioned once, to save time."""
    cell, prisoner, pin = provision(console.e2e, (LONDON, "approved"))
    console.e2e.cli("contact", "add", prisoner, LEGAL, "--kind", "legal")
    console.e2e.cli("contact", "approve", prisoner, LEGAL)
    return cell, prisoner, pin


def open_live(driver: WebDriver, console: Console, role: str) -> None:
    login(driver, console, console.accounts[role])
    driver.get(console.url("/live"))
    wait(driver).until(lambda d: d.find_element(By.ID, "feed-state").text == "live")
    driver.execute_script("window.ccLoadedOnce = true")  # gone if the page ever reloads


def row(driver: WebDriver, call_id: int) -> Any:
    found = driver.find_elements(By.CSS_SELECTOR, f'#live-calls tr[data-call="{call_id}"]')
    return found[0] if found else None


def wait_for_row(driver: WebDriver, call_id: int, present: bool = True) -> None:
    wait(driver, 25).until(lambda d: (row(d, call_id) is not None) == present)


def fetch_post(driver: WebDriver, path: str, fields: dict[str, str]) -> dict[str, Any]:
    """A POST from inside the page (its cookies, its Origin), as a tampered page would send:
    returns the status and the body."""
    return dict(
        driver.execute_async_script(
            """
            const [path, fields, done] = arguments;
            const body = new FormData();
            for (const [k, v] of Object.entries(fields)) body.append(k, v);
            fetch(path, {method: 'POST', body, credentials: 'same-origin'})
              .then(async r => done({status: r.status, body: await r.text()}))
              .catch(e => done({status: 0, body: String(e)}));
            """,
            "/console" + path,
            fields,
        )
    )


def page_csrf(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "live-calls").get_attribute("data-csrf"))


def levels(driver: WebDriver, *freqs: float) -> dict[float, float]:
    """The player's AnalyserNode: the level (dB) of the bin nearest each frequency."""
    got = driver.execute_script(
        """
        const a = window.ccListen.analyser, rate = window.ccListen.ctx.sampleRate;
        const data = new Float32Array(a.frequencyBinCount);
        a.getFloatFrequencyData(data);
        return arguments[0].map(f => data[Math.round(f * a.fftSize / rate)]);
        """,
        list(freqs),
    )
    return dict(zip(freqs, got, strict=True))


def audiosocket_port(console: Console) -> int:
    """The port the daemon's AudioSocket server took at its start (from its log)."""
    log = console.e2e.daemon.log.read_text()
    found = re.findall(r"AudioSocket \(listening from the browser\) on 127\.0\.0\.1:(\d+)", log)
    assert found, "the daemon did not say where its AudioSocket listens"
    return int(found[-1])


def intruders_refused(console: Console) -> None:
    """Two local peers that are not Asterisk: each is closed by the daemon at once."""
    port = audiosocket_port(console)
    for hello in (b"\x01\x00\x10" + uuid.uuid4().bytes, b"GET / HTTP/1.1\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as peer:
            peer.sendall(hello + b"\x10\x01\x40" + b"\x00" * 320)
            try:
                said = peer.recv(1024)
            except ConnectionResetError:  # closed with what it sent still unread
                said = b""
            assert said == b""  # closed, nothing said


def test_a_bridged_call_appears_by_itself_and_goes_when_it_ends(
    driver: WebDriver, console: Console, caller: tuple[str, str, str]
) -> None:
    cell, prisoner, pin = caller
    open_live(driver, console, "officer")
    with call_in_background(console.e2e, cell, pin, "02079460000", 8) as result:
        call_id = live_call(console.e2e, prisoner)
        wait_for_row(driver, call_id)
        text = row(driver, call_id).text
        assert cell in text and prisoner in text and "+442079460000" in text, text
        screenshot(driver, "console-live")
        wait_for_row(driver, call_id, present=False)
    assert result["outcome"] == "connected", result
    assert driver.execute_script("return window.ccLoadedOnce") is True  # never reloaded


def test_an_officer_hears_the_handsets_tone_in_the_page_until_the_call_ends(
    driver: WebDriver, console: Console, caller: tuple[str, str, str]
) -> None:
    cell, prisoner, pin = caller
    open_live(driver, console, "officer")
    with call_in_background(console.e2e, cell, pin, "02079460000", 14) as result:
        call_id = live_call(console.e2e, prisoner)
        wait_for_row(driver, call_id)
        row(driver, call_id).find_element(By.NAME, "reason").send_keys("intelligence")
        row(driver, call_id).find_element(By.CSS_SELECTOR, "button.listen").click()
        wait(driver, 20).until(
            lambda d: (
                d.execute_script("return window.ccListen && window.ccListen.state") == "listening"
            )
        )
        # A local account connects to the daemon's AudioSocket with a UUID of its own, and
        # with garbage: refused, and the listen goes on undisturbed.
        before = driver.execute_script("return window.ccListen.frames")
        intruders_refused(console)
        time.sleep(1.5)  # a second and a half of the call's audio through the analyser
        assert driver.execute_script("return window.ccListen.frames") > before + 25
        assert driver.execute_script("return window.ccListen.state") == "listening"
        heard = levels(driver, 1000, 400, 700, 1600, 2500)
        screenshot(driver, "console-live-listening")
        # The handset's 1 kHz tone (and the called party's 400 Hz) stand far above the bins
        # between and beyond them: the call's own audio reached the page.
        quiet = max(heard[700], heard[1600], heard[2500])
        assert heard[1000] > quiet + 30, heard
        assert heard[400] > quiet + 30, heard
        frames = driver.execute_script("return window.ccListen.frames")
        assert frames > 25, frames
        wait(driver, 30).until(
            lambda d: d.find_element(By.ID, "listen-state").text.startswith("ended")
        )
    assert driver.find_element(By.ID, "listen-state").text == "ended: the call ended"
    assert result["outcome"] == "connected" and result["ended_by"] == "handset", result
    # Audited under the officer's name: asked (with the reason), then started, before audio.
    target = f"call:{call_id}"
    asked = [r for r in audit_rows(console, "listen", "olive") if r["target"] == target]
    started = [r for r in audit_rows(console, "listen_started", "olive") if r["target"] == target]
    assert len(asked) == 1 and len(started) == 1, (asked, started)
    assert asked[0]["reason"] == "intelligence" and asked[0]["role"] == "officer"
    assert asked[0]["id"] < started[0]["id"]
    assert "AudioSocket/127.0.0.1:" in started[0]["detail"]


def test_an_officer_cuts_a_call_from_the_page_with_a_reason(
    driver: WebDriver, console: Console, caller: tuple[str, str, str]
) -> None:
    cell, prisoner, pin = caller
    open_live(driver, console, "officer")
    with call_in_background(console.e2e, cell, pin, "02079460000", 30) as result:
        call_id = live_call(console.e2e, prisoner)
        wait_for_row(driver, call_id)
        # Talking for a moment first: the simulated called party counts a call that ends
        # within ACCEPT_SETTLE_S of its accept digit as never bridged.
        time.sleep(ACCEPT_SETTLE_S + 1.5)
        # A forged cut without the page's CSRF token: refused, the call goes on.
        forged = fetch_post(driver, f"/live/{call_id}/cut", {"reason": "forged"})
        assert forged["status"] == 403, forged
        assert row(driver, call_id) is not None
        found = row(driver, call_id)
        found.find_element(By.NAME, "reason").send_keys("threats to a witness")
        found.find_element(By.CSS_SELECTOR, "button.danger").click()
        wait(driver).until(lambda d: f"Call {call_id} was cut." in d.page_source)
        wait_for_row(driver, call_id, present=False)
    assert result["outcome"] == "connected" and result["ended_by"] == "network", result
    assert float(result["talk_s"]) < 25, result
    cuts = [r for r in audit_rows(console, "cut", "olive") if r["target"] == f"call:{call_id}"]
    assert len(cuts) == 1 and cuts[0]["reason"] == "threats to a witness"  # not the forged one
    assert cuts[0]["role"] == "officer"


def test_a_privileged_call_cannot_be_listened_to(
    driver: WebDriver, console: Console, caller: tuple[str, str, str]
) -> None:
    cell, prisoner, pin = caller
    open_live(driver, console, "officer")
    with call_in_background(console.e2e, cell, pin, LEGAL, 10) as result:
        call_id = live_call(console.e2e, prisoner)
        wait_for_row(driver, call_id)
        listen = row(driver, call_id).find_element(By.CSS_SELECTOR, "button.listen")
        assert not listen.is_enabled()
        assert "(privileged)" in row(driver, call_id).text
        # A tampered page asks all the same: refused by the daemon, and audited.
        answer = fetch_post(driver, f"/live/{call_id}/listen", {"csrf_token": page_csrf(driver)})
        assert answer["status"] == 403, answer
        assert "privileged" in json.loads(answer["body"])["error"]
    assert result["outcome"] == "connected", result
    target = f"call:{call_id}"
    refused = [r for r in audit_rows(console, "listen_refused", "olive") if r["target"] == target]
    assert len(refused) == 1 and "privileged" in refused[0]["detail"]
    assert not [r for r in audit_rows(console, "listen") if r["target"] == target]
    assert not [r for r in audit_rows(console, "listen_started") if r["target"] == target]


def test_an_auditor_sees_live_calls_but_cannot_cut_or_listen(
    driver: WebDriver, console: Console, caller: tuple[str, str, str]
) -> None:
    cell, prisoner, pin = caller
    open_live(driver, console, "auditor")
    with call_in_background(console.e2e, cell, pin, "02079460000", 12) as result:
        call_id = live_call(console.e2e, prisoner)
        wait_for_row(driver, call_id)
        found = row(driver, call_id)
        assert not found.find_element(By.CSS_SELECTOR, "button.listen").is_enabled()
        assert not found.find_element(By.CSS_SELECTOR, "button.danger").is_enabled()
        csrf = page_csrf(driver)
        answer = fetch_post(driver, f"/live/{call_id}/listen", {"csrf_token": csrf})
        assert answer["status"] == 403, answer
        post_form(driver, f"/live/{call_id}/cut", {"csrf_token": csrf, "reason": "audit"})
        assert page_title(driver) == "Not allowed"
    # The call ran its course: the handset hung up, nobody cut it.
    assert result["outcome"] == "connected" and result["ended_by"] == "handset", result
    target = f"call:{call_id}"
    for action in ("cut", "listen", "listen_started"):
        assert not [r for r in audit_rows(console, action) if r["target"] == target], action
