"""The prisoners' kiosk in headless Chromium against the real daemon, lab and PostgreSQL: sign in,
the balance falls after a SIPp call, the handset's lockout, a contact request in staff's queue,
a PIN change that the handset obeys at once, and no way out of the kiosk's pages."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.config import load_settings
from callcontrol.operator_services import operator_services
from callcontrol.services.views import PendingContact
from tests.e2e.browser import screenshot, wait
from tests.e2e.conftest import E2E, KIOSK_PORT
from tests.e2e.test_billing import MOBILE, settled
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e

KIOSK = f"http://127.0.0.1:{KIOSK_PORT}"
REFUSED = "Not accepted"


def wait_for_kiosk() -> str:
    """The kiosk's origin, once the daemon serves it (it starts after the FastAGI server)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(KIOSK + "/", timeout=2) as answer:
                if answer.status == 200:
                    return KIOSK
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@pytest.fixture(scope="module")
def kiosk_up(e2e: E2E) -> str:
    return wait_for_kiosk()


@pytest.fixture
def kiosk(chromium: WebDriver, kiosk_up: str) -> Iterator[WebDriver]:
    """The browser on the kiosk, with no cookies left by an earlier test."""
    chromium.get(kiosk_up + "/")
    chromium.delete_all_cookies()
    chromium.get(kiosk_up + "/")
    yield chromium


def sign_in(driver: WebDriver, number: str, pin: str, *, expect: bool = True) -> bool:
    """Sign in through the page; True when the account's page follows (a failure to sign in
    when ``expect``-ed says what the page said)."""
    driver.get(KIOSK + "/")
    driver.find_element(By.ID, "number").send_keys(number)
    driver.find_element(By.ID, "pin").send_keys(pin)
    driver.find_element(By.ID, "signin").click()
    wait(driver).until(
        lambda d: d.find_elements(By.ID, "balance") or d.find_elements(By.ID, "error")
    )
    signed_in = bool(driver.find_elements(By.ID, "balance"))
    assert signed_in or not expect, text_of(driver, "error")
    return signed_in


def sign_out(driver: WebDriver) -> None:
    driver.find_element(By.ID, "signout").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "login")))


def text_of(driver: WebDriver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def pence(shown: str) -> int:
    """ "£4.99" -> 499."""
    sign = -1 if shown.startswith("-") else 1
    pounds, p = shown.lstrip("-£").split(".")
    return sign * (int(pounds) * 100 + int(p))


def staffs_queue(e2e: E2E) -> list[PendingContact]:
    """ContactService.pending(): the queue staff work from, as the console reads it."""

    async def pending() -> list[PendingContact]:
        engine = make_engine(e2e.db_url)
        try:
            settings = load_settings(e2e.config)
            return await operator_services(settings, session_factory(engine)).contacts.pending()
        finally:
            await engine.dispose()

    return asyncio.run(pending())


def links_stay_on_the_kiosk(driver: WebDriver) -> None:
    for element in driver.find_elements(By.CSS_SELECTOR, "a[href], form[action], link[href]"):
        target = element.get_attribute("href") or element.get_attribute("action") or ""
        assert target.startswith(KIOSK + "/"), (driver.current_url, target)


def test_the_balance_falls_by_the_calls_charge(e2e: E2E, kiosk: WebDriver) -> None:
    cell, prisoner, pin = provision(e2e, (MOBILE, "approved"), credit=500)
    assert sign_in(kiosk, prisoner, pin)
    assert (text_of(kiosk, "balance"), text_of(kiosk, "available")) == ("£5.00", "£5.00")
    assert text_of(kiosk, "reserved") == "£0.00"
    screenshot(kiosk, "kiosk-home")
    links_stay_on_the_kiosk(kiosk)
    call = e2e.call(cell, pin, "07911123456", 10)  # 10 s at 6.88p/min: 1p
    assert call["outcome"] == "connected", call
    charge = int(settled(e2e, call)["charge_pence"])  # type: ignore[call-overload]
    assert charge > 0
    kiosk.get(KIOSK + "/")
    assert pence(text_of(kiosk, "balance")) == 500 - charge
    assert pence(text_of(kiosk, "available")) == 500 - charge
    kiosk.find_element(By.ID, "go-statement").click()
    rows = kiosk.find_elements(By.CSS_SELECTOR, "#statement tbody tr")
    assert MOBILE in rows[0].text and f"-£0.{charge:02d}" in rows[0].text, rows[0].text
    screenshot(kiosk, "kiosk-statement")
    kiosk.get(KIOSK + "/my-calls")
    first = kiosk.find_elements(By.CSS_SELECTOR, "#calls tbody tr")[0].text
    assert MOBILE in first and "connected" in first, first
    screenshot(kiosk, "kiosk-calls")
    sign_out(kiosk)
    kiosk.get(KIOSK + "/statement")  # signed out: the page is the sign-in form
    assert kiosk.find_elements(By.ID, "login") and not kiosk.find_elements(By.ID, "statement")


def test_wrong_pins_are_refused_and_lock_as_on_the_handset(e2e: E2E, kiosk: WebDriver) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    tries = load_settings(e2e.config).site.pin_lockout_failures
    answers = set()
    for n in range(tries):
        assert not sign_in(kiosk, prisoner, f"{9000 + 2 * n}", expect=False)
        answers.add(text_of(kiosk, "error"))
    assert not sign_in(
        kiosk, prisoner, pin, expect=False
    )  # locked: the right PIN gets the same answer
    answers.add(text_of(kiosk, "error"))
    assert not sign_in(kiosk, "NOSUCH1", pin, expect=False)  # and an unknown prison number too
    answers.add(text_of(kiosk, "error"))
    assert len(answers) == 1 and REFUSED in answers.pop()
    screenshot(kiosk, "kiosk-refused")
    # The handset's own lockout: its alert, its audit entry, and the handset refuses too.
    alerts = [a for a in json.loads(e2e.cli("alerts", "--json").stdout) if a["cell"] == cell]
    assert [(a["status"], a["failures"]) for a in alerts] == [("in force", tries)]
    audit = e2e.sql(
        "SELECT actor FROM audit_log WHERE action = 'pin_lockout' AND target = $1", f"cell:{cell}"
    )
    assert [r["actor"] for r in audit] == ["callcontrol"]
    call = e2e.call(cell, pin, "02079460000", 1)
    assert (call["outcome"], call["reason"]) == ("refused", "pin_locked"), call
    # It is the database's: a restart of the daemon ends no lockout.
    e2e.daemon.restart()
    wait_for_kiosk()
    assert not sign_in(kiosk, prisoner, pin, expect=False)
    # Staff end it as any handset lockout.
    e2e.cli("cell", "unlock", cell, "--reason", "kiosk test")
    assert sign_in(kiosk, prisoner, pin)


def test_a_requested_contact_is_pending_in_staffs_queue(e2e: E2E, kiosk: WebDriver) -> None:
    _, prisoner, pin = provision(e2e, (LONDON, "approved"))
    assert sign_in(kiosk, prisoner, pin)
    kiosk.find_element(By.ID, "go-request").click()
    kiosk.find_element(By.ID, "number").send_keys("020 7946 0123")
    kiosk.find_element(By.ID, "label").send_keys("Sister")
    screenshot(kiosk, "kiosk-request")
    kiosk.find_element(By.ID, "ask").click()
    wait(kiosk).until(ec.presence_of_element_located((By.ID, "info")))
    assert "+442079460123" in text_of(kiosk, "info")
    kiosk.find_element(By.ID, "go-contacts").click()
    rows = {
        r.find_element(By.TAG_NAME, "td").text: r.text
        for r in kiosk.find_elements(By.CSS_SELECTOR, "#contacts tbody tr")
    }
    assert "Waiting for staff" in rows["+442079460123"] and "Sister" in rows["+442079460123"]
    assert "You can call" in rows[LONDON]
    screenshot(kiosk, "kiosk-contacts")
    stored = e2e.sql(
        "SELECT c.status, c.kind, h.changed_by FROM contacts c JOIN prisoners p "
        "ON p.id = c.prisoner_id JOIN contact_changes h ON h.contact_id = c.id "
        "WHERE p.prison_number = $1 AND c.number = '+442079460123'",
        prisoner,
    )
    assert [tuple(r) for r in stored] == [("pending", "social", f"{prisoner} via kiosk")]
    queue = [(c.prison_number, c.number, c.label) for c in staffs_queue(e2e)]
    assert (prisoner, "+442079460123", "Sister") in queue
    # A number already listed is refused with the reason, on the kiosk's own page.
    kiosk.get(KIOSK + "/contacts/new")
    kiosk.find_element(By.ID, "number").send_keys("02079460000")
    kiosk.find_element(By.ID, "ask").click()
    wait(kiosk).until(ec.presence_of_element_located((By.ID, "error")))
    assert "already listed" in text_of(kiosk, "error")


def test_a_new_pin_works_on_the_handset_and_the_old_one_no_longer(
    e2e: E2E, kiosk: WebDriver
) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    assert sign_in(kiosk, prisoner, pin)
    kiosk.find_element(By.ID, "go-pin").click()
    for field, value in (("old", pin), ("new", "1234"), ("again", "1234")):
        kiosk.find_element(By.ID, field).send_keys(value)
    kiosk.find_element(By.ID, "change").click()
    wait(kiosk).until(ec.presence_of_element_located((By.ID, "error")))
    assert "too easy" in text_of(kiosk, "error")  # a run up: refused, the session goes on
    screenshot(kiosk, "kiosk-pin")
    for field, value in (("old", pin), ("new", "2580"), ("again", "2580")):
        kiosk.find_element(By.ID, field).send_keys(value)
    kiosk.find_element(By.ID, "change").click()
    wait(kiosk).until(ec.presence_of_element_located((By.ID, "login")))
    assert "Your PIN is changed" in text_of(kiosk, "info")  # and the session is over
    kiosk.get(KIOSK + "/")
    assert kiosk.find_elements(By.ID, "login")
    new = e2e.call(cell, "2580", "02079460000", 1)
    assert new["outcome"] == "connected", new
    old = e2e.call(cell, pin, "02079460000", 1, "--pin-tries", "3")  # the site allows 3
    assert (old["outcome"], old["reason"]) == ("refused", "wrong_pin"), old
    audit = e2e.sql(
        "SELECT actor, role FROM audit_log WHERE action = 'set_pin' AND target = $1",
        f"prisoner:{prisoner}",
    )
    assert [tuple(r) for r in audit] == [(prisoner, "prisoner")]
    assert sign_in(kiosk, prisoner, "2580")


ESCAPES = (
    "/console/",
    "/console/login",
    "/calls/live",
    "/calls",
    "/alerts",
    "/metrics",
    "/ready",
    "/health",
    "/static/../console/",
    "/%2e%2e/console/",
    "/static/..%2f..%2fapp.py",
    "/statement/",
)


def test_no_way_out_and_no_other_prisoners_data(e2e: E2E, kiosk: WebDriver) -> None:
    _, prisoner, pin = provision(e2e, (LONDON, "approved"))
    _, other, _ = provision(e2e, ("+442079460999", "approved"))
    assert sign_in(kiosk, prisoner, pin)
    http_port = load_settings(e2e.config).http.port
    # The console exists on the daemon's HTTP server, not on the kiosk's port.
    kiosk.get(f"http://127.0.0.1:{http_port}/console/login")
    assert kiosk.find_elements(By.ID, "username")
    for path in ESCAPES:
        kiosk.get(KIOSK + path)
        assert kiosk.find_elements(By.ID, "not-here"), (path, kiosk.page_source[:300])
        assert not kiosk.find_elements(By.ID, "username"), path
        assert kiosk.current_url.startswith(KIOSK + "/"), (path, kiosk.current_url)
        links_stay_on_the_kiosk(kiosk)
    screenshot(kiosk, "kiosk-not-here")
    # Another prisoner's records: no parameter names anyone but the session's prisoner.
    for path in ("/statement", "/my-calls", "/contacts"):
        for query in (f"?prisoner={other}", f"?prison_number={other}", f"?number={other}"):
            kiosk.get(KIOSK + path + query)
            assert other not in kiosk.page_source and "+442079460999" not in kiosk.page_source
    kiosk.get(KIOSK + "/contacts/new")
    kiosk.execute_script(  # a tampered form: an extra field naming the other prisoner
        "const i = document.createElement('input'); i.type = 'hidden'; i.name = 'prisoner';"
        "i.value = arguments[0]; document.getElementById('request').appendChild(i);",
        other,
    )
    kiosk.find_element(By.ID, "number").send_keys("02079460777")
    kiosk.find_element(By.ID, "ask").click()
    wait(kiosk).until(ec.presence_of_element_located((By.ID, "info")))
    owners = e2e.sql(
        "SELECT p.prison_number FROM contacts c JOIN prisoners p ON p.id = c.prisoner_id "
        "WHERE c.number = '+442079460777'"
    )
    assert [r["prison_number"] for r in owners] == [prisoner]
    # A form without the page's token (a forged POST from the page itself) changes nothing.
    kiosk.get(KIOSK + "/pin")
    kiosk.execute_script("document.querySelector('#pin input[name=csrf]').value = 'forged';")
    for field, value in (("old", pin), ("new", "2580"), ("again", "2580")):
        kiosk.find_element(By.ID, field).send_keys(value)
    kiosk.find_element(By.ID, "change").click()
    wait(kiosk).until(ec.presence_of_element_located((By.ID, "error")))
    assert e2e.call(*provision_pin(e2e, prisoner, pin)).get("outcome") == "connected"


def provision_pin(e2e: E2E, prisoner: str, pin: str) -> tuple[str, str, str, float]:
    """The call that proves ``pin`` is still the prisoner's PIN (their cell, a 1 s call)."""
    [row] = e2e.sql(
        "SELECT c.name FROM prisoners p JOIN cells c ON c.id = p.cell_id "
        "WHERE p.prison_number = $1",
        prisoner,
    )
    return row["name"], pin, "02079460000", 1.0
