"""A cell's page in Chromium against the real lab: an officer disables a cell and its live call
is cut; only an admin enables it again (an officer sees no button and a forged POST is
refused); an officer unlocks a handset locked by wrong PINs; an auditor changes nothing; and
the audit log names each person."""

from __future__ import annotations

import threading
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from callcontrol_lab.simulator.verdict import ACCEPT_SETTLE_S
from tests.e2e.browser import (
    Console,
    audit_rows,
    csrf_token,
    login,
    page_title,
    post_form,
    screenshot,
    wait,
)
from tests.e2e.test_cell_calls import LONDON, provision
from tests.e2e.test_pin_lockout import _lock

pytestmark = pytest.mark.e2e

HOLD_S = 40  # the handset would stay this long: a cut ends the call far sooner


def cell_enabled(console: Console, cell: str) -> bool:
    return bool(console.e2e.sql("SELECT enabled FROM cells WHERE name = $1", cell)[0]["enabled"])


def open_cell(driver: WebDriver, console: Console, cell: str) -> None:
    driver.get(console.url(f"/cells/{cell}"))
    assert page_title(driver) == f"Cell {cell}"


def test_officer_disables_a_cell_and_its_live_call_is_cut(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    result: dict[str, object] = {}
    caller = threading.Thread(
        target=lambda: result.update(e2e.call(cell, pin, "02079460000", HOLD_S))
    )
    caller.start()
    try:
        login(driver, console, console.accounts["officer"])
        answered = '#live-calls tr[data-talking="yes"]'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the call shows; its called party accepts
            open_cell(driver, console, cell)
            if driver.find_elements(By.CSS_SELECTOR, answered):
                break
            time.sleep(0.5)
        assert prisoner in driver.find_element(By.CSS_SELECTOR, answered).text
        # The handset's simulator tells a bridged call from a refused one only when it outlives
        # the acceptance by a second (simulator/verdict.py's ACCEPT_SETTLE_S): let it talk first.
        time.sleep(ACCEPT_SETTLE_S + 1.5)
        assert not driver.find_elements(By.ID, "enable"), "an officer has no enable button"
        screenshot(driver, "console-cell")
        driver.find_element(By.ID, "disable-reason").send_keys("phone misused")
        driver.find_element(By.ID, "disable").click()
        wait(driver).until(lambda d: "disabled" in d.find_element(By.ID, "cell-state").text)
        notice = driver.find_element(By.CLASS_NAME, "notice").text
        assert f"Cell {cell} disabled" in notice and "1 live call(s) cut" in notice, notice
    finally:
        caller.join(timeout=HOLD_S + 30)
    assert result.get("outcome") == "connected", result
    assert result.get("ended_by") == "network", result  # cut by the network, not hung up
    assert float(result["talk_s"]) < HOLD_S - 10, result  # type: ignore[arg-type]
    assert not cell_enabled(console, cell)
    [disabled] = [
        r for r in audit_rows(console, "disable", "olive") if r["target"] == f"cell:{cell}"
    ]
    assert (disabled["role"], disabled["reason"]) == ("officer", "phone misused")
    cuts = [r for r in audit_rows(console, "cut", "olive") if r["reason"] == "phone misused"]
    assert len(cuts) == 1

    # An officer may not let calls through again: no button, and a forged POST is refused.
    assert not driver.find_elements(By.ID, "enable")
    assert "Only an administrator" in driver.page_source
    post_form(driver, f"/cells/{cell}/enable", {"csrf_token": csrf_token(driver), "reason": "x"})
    assert page_title(driver) == "Not allowed"
    assert not cell_enabled(console, cell)
    assert not [r for r in audit_rows(console, "enable", "olive") if r["target"] == f"cell:{cell}"]

    # An admin may.
    driver.delete_all_cookies()
    login(driver, console, console.accounts["admin"])
    open_cell(driver, console, cell)
    driver.find_element(By.ID, "enable-reason").send_keys("talked to the prisoner")
    driver.find_element(By.ID, "enable").click()
    wait(driver).until(lambda d: "in service" in d.find_element(By.ID, "cell-state").text)
    assert cell_enabled(console, cell)
    [enabled] = [r for r in audit_rows(console, "enable", "adam") if r["target"] == f"cell:{cell}"]
    assert (enabled["role"], enabled["reason"]) == ("admin", "talked to the prisoner")


def test_officer_unlocks_a_handset_locked_by_wrong_pins(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    _lock(e2e, cell)
    login(driver, console, console.accounts["officer"])
    driver.get(console.url("/alerts"))
    row = driver.find_element(By.CSS_SELECTOR, f'#lockouts tr[data-cell="{cell}"]')
    assert "locked" in row.find_element(By.CLASS_NAME, "status").text
    screenshot(driver, "console-alerts")
    row.find_element(By.LINK_TEXT, cell).click()
    assert "locked by wrong PINs" in driver.find_element(By.ID, "lock-state").text
    driver.find_element(By.ID, "unlock-reason").send_keys("cellmate confirmed the mistake")
    driver.find_element(By.ID, "unlock").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "lock-state").text == "not locked")
    assert "unlocked" in driver.find_element(By.CLASS_NAME, "notice").text
    [unlock] = [r for r in audit_rows(console, "unlock", "olive") if r["target"] == f"cell:{cell}"]
    assert (unlock["role"], unlock["reason"]) == ("officer", "cellmate confirmed the mistake")
    assert e2e.call(cell, pin, "02079460000", 1)["outcome"] == "connected"


def test_an_auditor_sees_no_act_and_a_forged_one_is_refused(
    driver: WebDriver, console: Console
) -> None:
    e2e = console.e2e
    cell, _, _ = provision(e2e)
    login(driver, console, console.accounts["auditor"])
    driver.find_element(By.LINK_TEXT, "Cells").click()
    row = driver.find_element(By.CSS_SELECTOR, f'#cells tr[data-cell="{cell}"]')
    assert "in service" in row.text
    row.find_element(By.LINK_TEXT, cell).click()
    assert page_title(driver) == f"Cell {cell}"
    for button in ("disable", "enable", "unlock"):
        assert not driver.find_elements(By.ID, button), button
    token = csrf_token(driver)
    for act in ("disable", "unlock", "enable"):
        post_form(driver, f"/cells/{cell}/{act}", {"csrf_token": token, "reason": "forged"})
        assert page_title(driver) == "Not allowed", act
    assert cell_enabled(console, cell)
    rows = e2e.sql("SELECT * FROM audit_log WHERE actor = 'audrey' AND target = $1", f"cell:{cell}")
    assert rows == []


def test_an_act_without_the_csrf_token_is_refused(driver: WebDriver, console: Console) -> None:
    cell, _, _ = provision(console.e2e)
    login(driver, console, console.accounts["admin"])
    open_cell(driver, console, cell)
    post_form(driver, f"/cells/{cell}/disable", {"reason": "no token"})
    assert page_title(driver) == "Refused"
    assert cell_enabled(console, cell)
