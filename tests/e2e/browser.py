"""The staff console in a real browser: headless Chromium from Debian (/usr/bin/chromium,
driven through /usr/bin/chromedriver by Selenium 4), against the real daemon and lab.

Fixtures (tests/e2e/conftest.py makes them every end-to-end test's):

- ``console``: the e2e lab and daemon (tests/e2e/conftest.py), with one staff account of each
  role made by `callcontrol staff add` (``console.accounts["officer"]``, ...);
  ``console.add_staff(...)`` makes more.
- ``chromium``: one browser for the session; ``driver``: that browser with no cookies left by
  an earlier test.

Helpers: ``login(driver, console, account)``, ``screenshot(driver, name)`` (saves NAME.png into
$CALLCONTROL_SCREENSHOTS when it is set: `make screenshots` sets it to docs/screenshots),
``post_form(driver, path, fields)`` (a forged POST from inside the page: what an attacker's page
or a tampered form would send) and ``audit_rows(console, action)``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from callcontrol.config import load_settings

if TYPE_CHECKING:  # conftest.py imports this module's fixtures
    from tests.e2e.conftest import E2E

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 15


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    role: str
    password: str


@dataclass
class Console:
    e2e: E2E
    origin: str  # http://127.0.0.1:PORT
    accounts: dict[str, Account] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return f"{self.origin}/console{path}"

    def add_staff(self, username: str, role: str, name: str = "") -> Account:
        """A new account through the operator's command (the password on standard input)."""
        password = "pw-" + secrets.token_urlsafe(12)
        name = name or f"{role.title()} {username.title()}"
        self.e2e.cli(
            "staff", "add", username, "--role", role, "--name", name, "--password-stdin",
            stdin=password + "\n",
        )  # fmt: skip
        return Account(username, name, role, password)


@pytest.fixture(scope="session")
def console(e2e: E2E) -> Console:
    settings = load_settings(e2e.config)
    made = Console(e2e, f"http://127.0.0.1:{settings.http.port}")
    for role, (username, name) in {
        "officer": ("olive", "Olive Officer"),
        "admin": ("adam", "Adam Admin"),
        "auditor": ("audrey", "Audrey Auditor"),
    }.items():
        made.accounts[role] = made.add_staff(username, role, name)
    return made


@pytest.fixture(scope="session")
def chromium() -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are needed: scripts/system-deps.sh installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--password-store=basic",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"credentials_enable_service": False, "profile.password_manager_enabled": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def driver(chromium: WebDriver, console: Console) -> WebDriver:
    """The browser, on the console's origin, with none of an earlier test's cookies."""
    chromium.get(console.url("/login"))
    chromium.delete_all_cookies()
    return chromium


def wait(driver: WebDriver, timeout: float = WAIT_S) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout)


def login(driver: WebDriver, console: Console, account: Account, password: str = "") -> None:
    """Log in through the login page (fails the test unless the home page follows)."""
    submit_login(driver, console, account.username, password or account.password)
    wait(driver).until(ec.presence_of_element_located((By.ID, "who")))


def submit_login(driver: WebDriver, console: Console, username: str, password: str) -> None:
    driver.get(console.url("/login"))
    driver.find_element(By.ID, "username").clear()
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(
        lambda d: d.find_elements(By.ID, "who") or d.find_elements(By.ID, "login-error")
    )


def logout(driver: WebDriver) -> None:
    driver.find_element(By.ID, "logout").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "username")))


def screenshot(driver: WebDriver, name: str) -> Path | None:
    """Save the page as NAME.png into $CALLCONTROL_SCREENSHOTS when it is set; else nothing."""
    folder = os.environ.get("CALLCONTROL_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def post_form(driver: WebDriver, path: str, fields: dict[str, str]) -> None:
    """Submit a POST form built inside the current page (so with the browser's own cookies
    and Origin): what a tampered page sends, e.g. for a button the page does not show."""
    driver.execute_script(
        """
        const [action, fields] = arguments;
        const form = document.createElement('form');
        form.method = 'post';
        form.action = action;
        for (const [name, value] of Object.entries(fields)) {
          const input = document.createElement('input');
          input.type = 'hidden'; input.name = name; input.value = value;
          form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
        """,
        "/console" + path,
        fields,
    )
    wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")


def csrf_token(driver: WebDriver) -> str:
    """The CSRF token of the current page's forms."""
    return str(
        driver.find_element(By.NAME, "csrf_token").get_attribute("value")  # the logout form's
    )


def page_title(driver: WebDriver) -> str:
    found = driver.find_elements(By.TAG_NAME, "h1")
    return found[0].text if found else ""


def audit_rows(console: Console, action: str, actor: str | None = None) -> list[Any]:
    """The audit log's entries of ``action`` (by ``actor``), oldest first, from PostgreSQL."""
    if actor is None:
        return console.e2e.sql("SELECT * FROM audit_log WHERE action = $1 ORDER BY id", action)
    return console.e2e.sql(
        "SELECT * FROM audit_log WHERE action = $1 AND actor = $2 ORDER BY id", action, actor
    )
