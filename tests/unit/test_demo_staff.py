"""`make run`'s demo makes a staff console administrator once, and prints its password once."""

from __future__ import annotations

import re
from pathlib import Path

from callcontrol.adapters.web.staff_file import read_accounts
from callcontrol.config import load_settings
from callcontrol.domain.staff import verify_password
from callcontrol_lab.demo import DEMO_STAFF, staff_admin


def test_the_demo_admin_is_made_once_and_its_password_shown_once(tmp_path: Path) -> None:
    config = tmp_path / "callcontrol.toml"
    config.write_text(f'base_dir = "{tmp_path}"\n')
    settings = load_settings(config)
    first = staff_admin(str(config), settings)
    password = re.search(r"password (\S+)\n", first)
    assert password, first
    [account] = read_accounts(tmp_path / "var" / "staff")
    assert (account.username, account.role) == (DEMO_STAFF, "admin")
    assert verify_password(password.group(1), account.password)
    assert (tmp_path / "var" / "staff").stat().st_mode & 0o777 == 0o600
    again = staff_admin(str(config), settings)
    assert password.group(1) not in again and "staff passwd admin" in again
