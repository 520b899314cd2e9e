"""Call history and the audit log in Chromium against the real lab: search by prisoner and
outcome, export what was found as CSV (audited), and read the audit log (admins and auditors
only), where whatever staff typed is shown as text, never run."""

from __future__ import annotations

import csv
import io

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.e2e.browser import Console, audit_rows, login, page_title, screenshot, wait
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e


def fetch_text(driver: WebDriver, href: str) -> str:
    """GET ``href`` from inside the page (the browser's session and cookies), as text."""
    return str(
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.text()).then(done, e => done('ERROR ' + e));",
            href,
        )
    )


def search(driver: WebDriver, console: Console, **filters: str) -> list[str]:
    driver.get(console.url("/history"))
    for name, value in filters.items():
        field = driver.find_element(By.ID, f"f-{name}")
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "date":  # typed keys follow the browser's locale
            driver.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.send_keys(value)
    driver.find_element(By.ID, "search").click()
    wait(driver).until(
        lambda d: d.find_elements(By.ID, "history") or d.find_elements(By.ID, "history-error")
    )
    rows = driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    return [r.get_attribute("data-decision") or "" for r in rows]


def test_search_history_and_export_csv(driver: WebDriver, console: Console) -> None:
    e2e = console.e2e
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    assert e2e.call(cell, pin, "02079460000", 1)["outcome"] == "connected"
    refused = e2e.call(cell, pin, "02079460999", 1)  # not a contact
    assert refused["outcome"] == "refused", refused
    ids = {
        r["outcome"]: str(r["id"])
        for r in e2e.sql(
            "SELECT d.id, d.outcome FROM call_decisions d JOIN prisoners p ON p.id = d.prisoner_id "
            "WHERE p.prison_number = $1",
            prisoner,
        )
    }
    assert set(ids) == {"allow", "refuse"}, ids
    login(driver, console, console.accounts["officer"])
    assert search(driver, console, prisoner=prisoner) == [ids["refuse"], ids["allow"]]
    screenshot(driver, "console-history")
    assert search(driver, console, prisoner=prisoner, outcome="refused") == [ids["refuse"]]
    assert search(driver, console, cell=cell, outcome="connected") == [ids["allow"]]
    assert search(driver, console, prisoner=prisoner, reason="not_approved") == [ids["refuse"]]

    search(driver, console, prisoner=prisoner)
    href = driver.find_element(By.ID, "export-csv").get_attribute("href")
    assert href
    table = list(csv.DictReader(io.StringIO(fetch_text(driver, href))))
    assert [row["decision_id"] for row in table] == [ids["refuse"], ids["allow"]]
    assert {row["prisoner"] for row in table} == {prisoner}
    assert table[1]["number"] == "'" + LONDON  # services/cdr.py: never a formula
    export = audit_rows(console, "history_export", "olive")[-1]
    assert export["role"] == "officer" and f"prisoner={prisoner}" in export["detail"]


def test_a_filter_that_cannot_match_says_why(driver: WebDriver, console: Console) -> None:
    login(driver, console, console.accounts["auditor"])
    search(driver, console, since="2026-12-05", until="2026-12-01")
    assert "not after" in driver.find_element(By.ID, "history-error").text


def test_audit_log_for_admins_and_auditors_shows_text_never_markup(
    driver: WebDriver, console: Console
) -> None:
    cell, _, _ = provision(console.e2e)
    hostile = '<img src=x id=injected onerror="document.title=1">'
    login(driver, console, console.accounts["officer"])
    assert "Audit log" not in driver.find_element(By.TAG_NAME, "nav").text
    driver.get(console.url("/audit"))
    assert page_title(driver) == "Not allowed"
    driver.get(console.url(f"/cells/{cell}"))
    driver.find_element(By.ID, "disable-reason").send_keys(hostile)
    driver.find_element(By.ID, "disable").click()
    wait(driver).until(lambda d: "disabled" in d.find_element(By.ID, "cell-state").text)
    assert not driver.find_elements(By.ID, "injected")

    for role in ("admin", "auditor"):
        driver.delete_all_cookies()
        login(driver, console, console.accounts[role])
        driver.find_element(By.LINK_TEXT, "Audit log").click()
        wait(driver).until(lambda d: page_title(d) == "Audit log")
        rows = driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
        seen = [
            (
                r.find_element(By.CLASS_NAME, "actor").text,
                r.find_element(By.CLASS_NAME, "action").text,
            )
            for r in rows
        ]
        assert ("olive", "disable") in seen and ("olive", "login") in seen
        assert (console.accounts[role].username, "login") in seen
        [disable] = [
            r
            for r in rows
            if r.find_element(By.CLASS_NAME, "target").text == f"cell:{cell}"
            and r.find_element(By.CLASS_NAME, "action").text == "disable"
        ]
        assert disable.find_element(By.CLASS_NAME, "reason").text == hostile  # shown as text
        assert not driver.find_elements(By.ID, "injected")
        if role == "auditor":
            screenshot(driver, "console-audit")
