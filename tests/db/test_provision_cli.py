"""`callcontrol handset provision`: the password from stdin (checked against the stored
digest) or a new one set in the same step, files 0600, and no secret on stdout or in logs."""

from __future__ import annotations

import hashlib
import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from tests.db.conftest import Cli
from tests.unit.test_provision import poly, yealink


@pytest.fixture
def site(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, str]:
    """A cell A1-01, its SIP password as `cell add` printed it, and a [provision] server."""
    monkeypatch.setenv("CALLCONTROL_PROVISION_SIP_SERVER", "pbx.prison.example")
    password = cli.ok("cell", "add", "A1-01", "--json").json()["sip_password"]
    return cli, password


def digest(cli: Cli) -> str:
    [(cred,)] = cli.query(select(m.Cell.sip_md5_cred).where(m.Cell.name == "A1-01"))
    return str(cred)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_current_password_from_stdin_goes_into_a_0600_file_and_nowhere_else(
    site: tuple[Cli, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cli, password = site
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "phones" / "001565aabbcc.cfg"
    before = digest(cli)
    result = cli.ok(
        "handset", "provision", "A1-01", "--model", "yealink-t4x", "--to", str(out),
        stdin=password + "\n",
    )  # fmt: skip
    assert "written to" in result.out and password not in result.out + result.err
    assert password not in caplog.text
    assert mode(out) == 0o600
    settings = yealink(out.read_text())
    assert settings["account.1.password"] == [password]
    assert settings["account.1.sip_server.1.address"] == ["pbx.prison.example"]
    assert digest(cli) == before  # nothing changed in the database
    # The phones' admin password: made once, random, 0600, the same in every file.
    admin_file = tmp_path / "var" / "handset-admin-password"
    assert mode(admin_file) == 0o600
    admin = admin_file.read_text().strip()
    assert settings["static.security.user_password"][0] == f"admin:{admin}"
    xml = tmp_path / "vvx.cfg"
    data = cli.ok(
        "handset", "provision", "A1-01", "--model", "poly-vvx", "--to", str(xml), "--json",
        stdin=password + "\n",
    ).json()  # fmt: skip
    assert data == {"cell": "A1-01", "model": "poly-vvx", "file": str(xml), "new_password": False}
    attrs = poly(xml.read_text())
    assert attrs["reg.1.auth.password"] == password
    assert attrs["device.auth.localAdminPassword"] == admin


def test_a_wrong_password_is_refused_and_nothing_is_written(
    site: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, password = site
    out = tmp_path / "x.cfg"
    result = cli(
        "handset", "provision", "A1-01", "--model", "yealink-t4x", "--to", str(out),
        stdin="Not-the-password-1\n",
    )  # fmt: skip
    assert result.status == 2 and "does not match the stored digest" in result.err
    assert not out.exists()
    assert cli("handset", "provision", "A1-01", "--model", "yealink-t4x", stdin="").status == 2


def test_new_password_is_stored_as_the_digest_and_written_only_into_the_file(
    site: tuple[Cli, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cli, old = site
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "new.cfg"
    result = cli.ok(
        "handset", "provision", "A1-01", "--model", "poly-vvx", "--to", str(out), "--new-password"
    )
    assert "new SIP password set" in result.out
    new = poly(out.read_text())["reg.1.auth.password"]
    assert new != old and new not in result.out + result.err + caplog.text
    assert mode(out) == 0o600
    assert digest(cli) == hashlib.md5(f"A1-01:callcontrol:{new}".encode()).hexdigest()
    # The old password no longer provisions; the new one does.
    assert cli("handset", "provision", "A1-01", "--model", "poly-vvx", stdin=old).status == 2
    printed = cli.ok("handset", "provision", "A1-01", "--model", "poly-vvx", stdin=new).out
    assert poly(printed)["reg.1.auth.password"] == new  # no --to: the file on stdout


def test_refusals_change_nothing(
    site: tuple[Cli, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli, password = site
    before = digest(cli)
    no_file = cli("handset", "provision", "A1-01", "--model", "poly-vvx", "--new-password")
    assert no_file.status == 2 and "--to FILE" in no_file.err
    argv = cli("handset", "provision", "A1-01", "--model", "poly-vvx", "--password", password)
    assert argv.status == 2  # there is no way to give it on the command line
    unknown = cli("handset", "provision", "A1-01", "--model", "cisco", stdin=password)
    assert unknown.status == 2
    assert cli("handset", "provision", "Z9-99", "--model", "poly-vvx", stdin=password).status == 2
    monkeypatch.setenv("CALLCONTROL_PROVISION_HOTLINE", "0\nfeatures.fwd.allow = 1")
    bad = cli("handset", "provision", "A1-01", "--model", "yealink-t4x", stdin=password)
    assert bad.status == 2 and "hotline" in bad.err
    # A hotline that is not the two-stage number would be dialled as a number to call.
    monkeypatch.setenv("CALLCONTROL_PROVISION_HOTLINE", "5")
    other = cli("handset", "provision", "A1-01", "--model", "yealink-t4x", stdin=password)
    assert other.status == 2 and "two_stage_number" in other.err
    monkeypatch.setenv("CALLCONTROL_PROVISION_HOTLINE", "0\nfeatures.fwd.allow = 1")
    out = tmp_path / "void.cfg"
    new = cli("handset", "provision", "A1-01", "--model", "poly-vvx", "--to", str(out),
              "--new-password")  # fmt: skip
    assert new.status == 2 and not out.exists()  # the new digest was rolled back with it
    monkeypatch.delenv("CALLCONTROL_PROVISION_HOTLINE")
    monkeypatch.delenv("CALLCONTROL_PROVISION_SIP_SERVER")
    unset = cli("handset", "provision", "A1-01", "--model", "yealink-t4x", stdin=password)
    assert unset.status == 2 and "sip_server" in unset.err
    assert digest(cli) == before
