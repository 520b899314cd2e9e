"""The rendered handsets: digest hashes with their realm, never a password."""

from __future__ import annotations

import hashlib

import pytest

from callcontrol.adapters.asterisk.pjsip_cells import CellEndpoint, render
from callcontrol.domain.sip_digest import REALM, md5_cred


def test_md5_cred_is_rfc_2617_ha1() -> None:
    # The example of Asterisk's pjsip.conf.sample: echo -n "fred:asterisk:mypass" | md5
    assert md5_cred("fred", "asterisk", "mypass") == "43a8d9be3da524f9a59ca0593d7b1b5d"
    with pytest.raises(ValueError, match="':'"):
        md5_cred("a:b", REALM, "x")


def test_an_auth_carries_the_hash_and_its_realm_not_a_password() -> None:
    cred = md5_cred("A1-01", REALM, "Secret-pass-0001")
    text = render([CellEndpoint("A1-01", "A1-01", REALM, cred)])
    auth = text.split("[A1-01-auth](cell-auth)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert auth == ["username = A1-01", "realm = callcontrol", f"md5_cred = {cred}"]
    assert not any(line.startswith("password") for line in text.splitlines())
    assert "Secret-pass-0001" not in text


@pytest.mark.parametrize(
    ("realm", "cred", "error"),
    [
        ("callcontrol", "0" * 31, "not an MD5 digest"),
        ("callcontrol", "Z" * 32, "not an MD5 digest"),
        ("call control", "0" * 32, "realm"),
        ("x\nmd5_cred = 0", "0" * 32, "realm"),
    ],
)
def test_what_pjsip_conf_cannot_hold_is_refused(realm: str, cred: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        render([CellEndpoint("A1-01", "A1-01", realm, cred)])


def test_the_template_is_md5() -> None:
    from callcontrol.resources import asterisk_templates_dir

    conf = (asterisk_templates_dir() / "pjsip.conf").read_text()
    template = conf.split("[cell-auth](!)\n", 1)[1].split("\n\n", 1)[0]
    assert "auth_type = md5" in template
    assert hashlib.md5(b"x").hexdigest()  # (MD5 is available: FIPS builds may lack it)
