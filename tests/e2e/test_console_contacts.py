"""The queue of pending contacts in the console, in headless Chromium against the real daemon:
an officer approves a pending number and the prisoner's next call to it from a SIPp handset is
bridged; a block with a reason refuses the call and keeps the reason in the contact's history;
an auditor reads the queue and cannot act, not even with a forged form; every act is audited
under the person's name. And the prisoner's page, where the result of those acts is shown."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from callcontrol.domain.money import pounds
from tests.e2e.browser import (
    Console,
    audit_rows,
    csrf_token,
    login,
    logout,
    page_title,
    post_form,
    screenshot,
    wait,
)
from tests.e2e.test_billing import account, settled
from tests.e2e.test_cell_calls import LONDON, decision, provision
from tests.e2e.test_recording import recording_of

pytestmark = pytest.mark.e2e

DIALLED = "02079460000"


def row_id(prisoner: str, number: str = LONDON) -> str:
    return f"pending-{prisoner}-{number.lstrip('+')}"


def decide_in_console(
    driver: WebDriver, console: Console, prisoner: str, act: str, reason: str
) -> str:
    """Approve or block the prisoner's pending number from the queue; the notice shown."""
    driver.get(console.url("/contacts"))
    row = driver.find_element(By.ID, row_id(prisoner))
    row.find_element(By.CLASS_NAME, "reason").send_keys(reason)
    row.find_element(By.CLASS_NAME, act).click()
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.notice"))
    return str(driver.find_element(By.CSS_SELECTOR, "p.notice").text)


def history(console: Console, prisoner: str) -> list[dict[str, Any]]:
    rows = console.e2e.sql(
        "SELECT h.* FROM contact_changes h JOIN prisoners p ON p.id = h.prisoner_id "
        "WHERE p.prison_number = $1 ORDER BY h.id",
        prisoner,
    )
    return [dict(r) for r in rows]


def test_an_officer_approves_a_pending_contact_and_the_call_is_bridged(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    cell, prisoner, pin = provision(e2e, (LONDON, "pending"))
    refused = e2e.call(cell, pin, DIALLED, 2)
    assert refused["outcome"] != "connected", refused
    assert decision(e2e, refused)["reason"] == "contact_pending"
    officer = console.accounts["officer"]
    login(driver, console, officer)
    driver.get(console.url("/contacts"))
    row = driver.find_element(By.ID, row_id(prisoner))
    assert cell in row.text and LONDON in row.text and "social" in row.text
    screenshot(driver, "console-contacts")
    notice = decide_in_console(driver, console, prisoner, "approve", "verified: the sister")
    assert f"Approved {LONDON} for {prisoner}" in notice
    assert driver.find_elements(By.ID, row_id(prisoner)) == []  # left the queue
    call = e2e.call(cell, pin, DIALLED, 2)
    assert call["outcome"] == "connected", call
    assert decision(e2e, call)["reason"] == "approved_contact"
    (approved,) = [r for r in audit_rows(console, "contact_approve") if prisoner in r["target"]]
    assert (approved["actor"], approved["role"]) == (officer.username, "officer")
    assert approved["reason"] == "verified: the sister"
    last = history(console, prisoner)[-1]
    assert (last["action"], last["new_status"], last["changed_by"]) == (
        "approved", "approved", officer.username,
    )  # fmt: skip


def test_a_block_with_a_reason_refuses_the_call_and_the_reason_is_in_the_history(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    cell, prisoner, pin = provision(e2e, (LONDON, "pending"))
    admin = console.accounts["admin"]
    login(driver, console, admin)
    notice = decide_in_console(driver, console, prisoner, "block", "victim asked for no contact")
    assert f"Blocked {LONDON} for {prisoner}" in notice
    call = e2e.call(cell, pin, DIALLED, 2)
    assert call["outcome"] != "connected", call
    assert decision(e2e, call)["outcome"] == "refuse"
    last = history(console, prisoner)[-1]
    assert (last["action"], last["new_status"]) == ("blocked", "blocked")
    assert last["note"] == "victim asked for no contact" and last["changed_by"] == admin.username
    (blocked,) = [r for r in audit_rows(console, "contact_block") if prisoner in r["target"]]
    assert blocked["actor"] == admin.username


def test_a_reason_is_required(driver: WebDriver, console: Console) -> None:
    e2e = console.e2e
    _, prisoner, _ = provision(e2e, (LONDON, "pending"))
    login(driver, console, console.accounts["officer"])
    driver.get(console.url("/contacts"))
    token = csrf_token(driver)
    fields = {"csrf_token": token, "prisoner": prisoner, "number": LONDON, "act": "approve"}
    post_form(driver, "/contacts/decide", fields | {"reason": "   "})  # the browser would not
    assert "a reason is required" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
    assert driver.find_elements(By.ID, row_id(prisoner)), "still pending"
    assert history(console, prisoner)[-1]["new_status"] == "pending"


def test_an_auditor_reads_the_queue_but_cannot_approve(driver: WebDriver, console: Console) -> None:
    e2e = console.e2e
    _, prisoner, _ = provision(e2e, (LONDON, "pending"))
    auditor = console.accounts["auditor"]
    login(driver, console, auditor)
    driver.get(console.url("/contacts"))
    row = driver.find_element(By.ID, row_id(prisoner))
    assert row.find_elements(By.TAG_NAME, "form") == []  # no decision offered
    assert row.find_elements(By.TAG_NAME, "button") == []
    # A forged form, with the auditor's own valid CSRF token: refused all the same.
    fields = {
        "csrf_token": csrf_token(driver), "prisoner": prisoner, "number": LONDON,
        "act": "approve", "reason": "I am not allowed",
    }  # fmt: skip
    post_form(driver, "/contacts/decide", fields)
    assert page_title(driver) == "Not allowed"
    assert history(console, prisoner)[-1]["new_status"] == "pending"
    assert [r for r in audit_rows(console, "contact_approve") if prisoner in r["target"]] == []


def test_a_decision_without_the_csrf_token_is_refused(driver: WebDriver, console: Console) -> None:
    e2e = console.e2e
    _, prisoner, _ = provision(e2e, (LONDON, "pending"))
    login(driver, console, console.accounts["officer"])
    driver.get(console.url("/contacts"))
    fields = {"prisoner": prisoner, "number": LONDON, "act": "approve", "reason": "forged"}
    post_form(driver, "/contacts/decide", fields)
    assert page_title(driver) == "Refused"
    post_form(driver, "/contacts/decide", fields | {"csrf_token": "0" * 43})
    assert page_title(driver) == "Refused"
    assert history(console, prisoner)[-1]["new_status"] == "pending"


def test_the_prisoner_page_shows_cell_contacts_history_money_calls_and_lockouts(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"), credit=500)
    e2e.cli("contact", "add", prisoner, "07911 123456", "--kind", "social")
    call = e2e.call(cell, pin, DIALLED, 3)
    assert call["outcome"] == "connected", call
    s = settled(e2e, call)
    balance, reserved = account(e2e, prisoner)
    assert balance == 500 - int(s["charge_pence"] or 0) and reserved == 0
    # The recording is compressed and stored after the call: the page links it once stored.
    assert recording_of(e2e, s["id"], wait=60) is not None
    login(driver, console, console.accounts["officer"])
    row = row_id(prisoner, "+447911123456")
    driver.get(console.url("/contacts"))
    driver.find_element(By.ID, row).find_element(By.CLASS_NAME, "reason").send_keys("harassment")
    driver.find_element(By.ID, row).find_element(By.CLASS_NAME, "block").click()
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.notice"))
    logout(driver)
    login(driver, console, console.accounts["auditor"])  # an auditor reads it all
    driver.get(console.url("/prisoners"))
    driver.find_element(By.ID, "q").send_keys(prisoner.lower())
    driver.find_element(By.ID, "find-button").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, f"prisoner-{prisoner}"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#prisoners tbody tr")) == 1
    driver.find_element(By.LINK_TEXT, prisoner).click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "facts"))
    assert driver.find_element(By.ID, "cell").text == cell
    assert driver.find_element(By.ID, "balance").text == pounds(balance)
    assert driver.find_element(By.ID, "reserved").text.startswith("£0.00")
    assert driver.find_element(By.ID, "available").text == pounds(balance)
    assert "approved" in driver.find_element(By.ID, f"contact-{LONDON.lstrip('+')}").text
    assert "blocked" in driver.find_element(By.ID, "contact-447911123456").text
    changes = driver.find_element(By.ID, "contact-history").text
    assert "harassment" in changes and "approved" in changes
    calls = driver.find_element(By.ID, "calls").text
    assert "approved_contact" in calls and "Recording" in calls
    statement = driver.find_element(By.ID, "statement").text
    assert "topup" in statement and "£5.00" in statement
    assert driver.find_elements(By.ID, "lockouts")
    screenshot(driver, "console-prisoner")
    driver.get(console.url("/prisoners/NOSUCH1"))
    assert page_title(driver) == "Not found"
