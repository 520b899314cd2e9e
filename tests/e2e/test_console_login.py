"""The staff console's login, in headless Chromium against the real daemon: log in and out,
wrong passwords and disabled accounts refused with one answer, the throttle, CSRF, and the
audit rows that name the person."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.browser import (
    Console,
    audit_rows,
    csrf_token,
    login,
    logout,
    page_title,
    post_form,
    screenshot,
    submit_login,
    wait,
)

pytestmark = pytest.mark.e2e


def error_text(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "login-error").text


def test_login_shows_home_with_the_persons_name_and_logout_ends_it(
    driver: WebDriver, console: Console
) -> None:
    driver.get(console.url("/login"))
    screenshot(driver, "console-login")
    officer = console.accounts["officer"]
    before = len(audit_rows(console, "login", officer.username))
    login(driver, console, officer)
    assert "Olive Officer (Officer)" in driver.find_element(By.ID, "who").text
    assert driver.find_element(By.ID, "role").text == "officer"
    cookie = driver.get_cookie("cc_console")
    assert cookie and cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    screenshot(driver, "console-home")
    logout(driver)
    assert "You have logged out" in driver.page_source
    driver.get(console.url("/"))
    assert driver.find_elements(By.ID, "username"), "logged out: the home page sends to login"
    logins = audit_rows(console, "login", officer.username)
    assert len(logins) == before + 1 and logins[-1]["role"] == "officer"
    assert audit_rows(console, "logout", officer.username)[-1]["id"] > logins[-1]["id"]


def test_wrong_password_unknown_user_and_disabled_account_get_one_answer(
    driver: WebDriver, console: Console
) -> None:
    leaver = console.add_staff("leaver", "officer", "Lee Leaver")
    console.e2e.cli("staff", "disable", "leaver")
    answers = {}
    for case, (username, password) in {
        "wrong password": (console.accounts["admin"].username, "not the password at all"),
        "unknown user": ("nobody-here", "whatever password 1"),
        "disabled": (leaver.username, leaver.password),
    }.items():
        submit_login(driver, console, username, password)
        answers[case] = error_text(driver)
        assert not driver.get_cookie("cc_console"), case
        assert driver.find_elements(By.ID, "username"), case
    assert len(set(answers.values())) == 1, answers
    screenshot(driver, "console-login-refused")
    failed = audit_rows(console, "login_failed")
    assert any(r["actor"] == "adam" and "wrong password" in r["detail"] for r in failed)
    assert any(r["actor"] == "leaver" and "disabled" in r["detail"] for r in failed)
    assert any(r["actor"] == "(unknown user)" for r in failed)


def test_disabling_a_person_ends_their_open_session(driver: WebDriver, console: Console) -> None:
    person = console.add_staff("shortstay", "officer", "Sam Shortstay")
    login(driver, console, person)
    console.e2e.cli("staff", "disable", "shortstay")
    driver.get(console.url("/"))
    assert driver.find_elements(By.ID, "username"), "the session ended with the account"


def test_changing_a_password_ends_open_sessions(driver: WebDriver, console: Console) -> None:
    person = console.add_staff("rotated", "auditor", "Rita Rotated")
    login(driver, console, person)
    console.e2e.cli("staff", "passwd", "rotated", "--password-stdin", stdin="a brand new secret\n")
    driver.get(console.url("/"))
    assert driver.find_elements(By.ID, "username")
    submit_login(driver, console, "rotated", person.password)
    assert error_text(driver)
    submit_login(driver, console, "rotated", "a brand new secret")
    assert driver.find_elements(By.ID, "who")


def test_logins_are_throttled_after_repeated_failures(driver: WebDriver, console: Console) -> None:
    target = console.add_staff("guessme", "admin", "Gus Guessme")
    for i in range(5):  # [console] login_failures_per_user
        submit_login(driver, console, target.username, f"wrong guess number {i}")
        assert "Wrong username or password" in error_text(driver)
    submit_login(driver, console, target.username, target.password)  # even the right one
    assert "Too many failed logins" in error_text(driver)
    assert not driver.get_cookie("cc_console")
    screenshot(driver, "console-login-throttled")


def test_logout_without_the_csrf_token_is_refused(driver: WebDriver, console: Console) -> None:
    login(driver, console, console.accounts["auditor"])
    post_form(driver, "/logout", {})  # no token
    assert page_title(driver) == "Refused"
    driver.get(console.url("/"))
    assert driver.find_elements(By.ID, "who"), "still logged in: nothing was done"
    post_form(driver, "/logout", {"csrf_token": "0" * 43})  # a wrong one
    assert page_title(driver) == "Refused"


class _Attacker(BaseHTTPRequestHandler):
    """Another site on this machine (another loopback port: the same site, another origin),
    whose page posts a form to the console with a token it somehow learned."""

    page = b""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_form_posted_from_another_origin_is_refused(
    driver: WebDriver, console: Console, attacker: ThreadingHTTPServer
) -> None:
    officer = console.accounts["officer"]
    login(driver, console, officer)
    token = csrf_token(driver)  # even with the right token
    before = len(audit_rows(console, "logout", officer.username))
    _Attacker.page = (
        "<html><body><form id=f method=post action='"
        + console.url("/logout")
        + f"'><input type=hidden name=csrf_token value='{token}'></form>"
        "<script>document.getElementById('f').submit()</script></body></html>"
    ).encode()
    driver.get(f"http://127.0.0.1:{attacker.server_port}/")
    wait(driver).until(lambda d: d.current_url.startswith(console.url("/")))
    wait(driver).until(lambda d: page_title(d) == "Refused")
    driver.get(console.url("/"))
    assert driver.find_elements(By.ID, "who"), "still logged in: the forged logout did nothing"
    assert len(audit_rows(console, "logout", officer.username)) == before
