"""Desk-phone provisioning files (callcontrol/provision/): well-formed, carrying the cell's
account, and locking the keypad down; values that could add a setting of their own refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from callcontrol.provision.profile import HandsetProfile, ProfileError, make_profile
from callcontrol.provision.render import MODELS, render

# A password with every character XML and a Yealink line care about (the SIP password rules
# allow them all).
PASSWORD = "Pw<&>\"'=%x9-Z"
ADMIN = "Admin-Secret-42"


def profile(**over: Any) -> HandsetProfile:
    values: dict[str, Any] = {
        "cell": "A1-01",
        "username": "A1-01",
        "password": PASSWORD,
        "server": "pbx.prison.example",
        "transport": "tls",
        "port": 0,
        "admin_password": ADMIN,
    }
    return make_profile(**(values | over))


def yealink(text: str) -> dict[str, list[str]]:
    """The file's settings: every line a comment, blank, or `key = value`."""
    lines = text.splitlines()
    assert lines[0] == "#!version:1.0.0.1"
    settings: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        assert sep and key and " " not in key, f"not a `key = value` line: {line!r}"
        settings.setdefault(key, []).append(value)
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    [value] = settings[key]
    return value


def poly(text: str) -> dict[str, str]:
    root = ET.fromstring(text)  # raises on anything that is not well-formed
    assert root.tag == "polycomConfig"
    attrs: dict[str, str] = {}
    for element in root:
        for key, value in element.attrib.items():
            assert key not in attrs, f"{key} set twice"
            attrs[key] = value
    return attrs


YEALINK_LOCKDOWN = {
    "features.dnd.allow": "0",
    "features.fwd.allow": "0",
    "forward.always.enable": "0",
    "features.conference.local.enable": "0",
    "transfer.blind_tran_on_hook_enable": "0",
    "transfer.semi_attend_tran_enable": "0",
    "features.save_call_history": "0",
    "auto_redial.enable": "0",
    "features.intercom.allow": "0",
    "features.direct_ip_call_enable": "0",
    "features.action_uri.enable": "0",
    "sip.trust_ctrl": "1",
    "static.wui.http_enable": "0",
    "static.wui.https_enable": "0",
    "features.factory_pwd_enable": "1",
    "features.reset_by_long_press_enable": "0",
    "static.auto_provision.pnp_enable": "0",
    "static.auto_provision.dhcp_option.enable": "0",
    "static.zero_touch.enable": "0",
    "static.auto_provision.custom.protect": "0",
    "account.2.enable": "0",
    "account.16.enable": "0",
    "linekey.2.type": "0",
    "linekey.29.type": "0",
    "programablekey.1.type": "0",
}

POLY_LOCKDOWN = {
    "feature.doNotDisturb.enable": "0",
    "feature.forward.enable": "0",
    "divert.fwd.1.enabled": "0",
    "call.localConferenceEnabled": "0",
    "feature.callList.enabled": "0",
    "homeScreen.redial.enable": "0",
    "feature.directory.enabled": "0",
    "feature.enhancedFeatureKeys.enabled": "0",
    "feature.urlDialing.enabled": "0",
    "softkey.1.enable": "0",
    "httpd.enabled": "0",
    "httpd.cfg.enabled": "0",
    "apps.restapi.enabled": "0",
    "device.prov.ztpEnabled": "0",
    "device.dhcp.bootSrvUseOpt": "Static",
    "device.auth.localAdminPassword": ADMIN,
    "device.auth.localAdminPassword.set": "1",
}


def test_yealink_carries_the_account_codecs_dtmf_and_srtp_over_tls() -> None:
    s = yealink(render("yealink-t4x", profile()))
    assert one(s, "account.1.enable") == "1"
    assert one(s, "account.1.user_name") == one(s, "account.1.auth_name") == "A1-01"
    assert one(s, "account.1.password") == PASSWORD
    assert one(s, "account.1.sip_server.1.address") == "pbx.prison.example"
    assert one(s, "account.1.sip_server.1.port") == "5061"
    assert one(s, "account.1.sip_server.1.transport_type") == "2"  # TLS
    assert one(s, "account.1.srtp_encryption") == "2"  # compulsory
    assert one(s, "account.1.dtmf.type") == "1"  # RFC 2833
    order = sorted(
        (int(one(s, f"account.1.codec.{c}.priority")), c) for c in ("g722", "pcma", "pcmu")
    )
    assert [c for _, c in order] == ["g722", "pcma", "pcmu"]
    assert one(s, "account.1.codec.g729.enable") == "0"
    for key, value in YEALINK_LOCKDOWN.items():
        assert one(s, key) == value, key
    assert s["static.security.user_password"] == [f"admin:{ADMIN}", f"user:{ADMIN}"]
    assert one(s, "features.hotline_number") == "%NULL%"  # no hotline: set empty


def test_yealink_over_udp_has_no_srtp_and_a_hotline_and_urls_when_set() -> None:
    p = profile(
        transport="udp",
        hotline="0",
        provisioning_url="https://prov.prison.example/phones",
        ca_cert_url="https://prov.prison.example/ca.crt",
    )
    s = yealink(render("yealink-t4x", p))
    assert one(s, "account.1.sip_server.1.transport_type") == "0"
    assert one(s, "account.1.sip_server.1.port") == "5060"
    assert one(s, "account.1.srtp_encryption") == "0"
    assert one(s, "features.hotline_number") == "0"
    assert one(s, "static.auto_provision.server.url") == "https://prov.prison.example/phones"
    assert one(s, "static.trusted_certificates.url") == "https://prov.prison.example/ca.crt"


def test_poly_is_well_formed_and_carries_the_account_and_the_lockdown() -> None:
    a = poly(render("poly-vvx", profile(port=5071)))
    assert a["reg.1.address"] == a["reg.1.auth.userId"] == "A1-01"
    assert a["reg.1.auth.password"] == PASSWORD  # escaped in the file, the same once parsed
    assert a["reg.1.server.1.address"] == "pbx.prison.example"
    assert a["reg.1.server.1.port"] == "5071"
    assert a["reg.1.server.1.transport"] == "TLS"
    assert a["sec.srtp.require"] == a["reg.1.srtp.require"] == "1"
    codecs = {k.removeprefix("voice.codecPref."): v for k, v in a.items() if "codecPref" in k}
    assert (codecs["G722"], codecs["G711_A"], codecs["G711_Mu"]) == ("1", "2", "3")
    assert {v for k, v in codecs.items() if k not in ("G722", "G711_A", "G711_Mu")} == {"0"}
    assert a["tone.dtmf.rfc2833Control"] == "1"
    assert a["voIpProt.SIP.dtmfViaSignaling.rfc2976"] == "0"
    for key, value in POLY_LOCKDOWN.items():
        assert a[key] == value, key
    assert a["call.autoOffHook.1.enabled"] == "0"
    assert a["device.prov.serverName.set"] == "0"  # not set: left as the phone has it


def test_poly_over_udp_with_hotline_ca_and_provisioning_server() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
    p = profile(
        transport="udp", hotline="100", provisioning_url="https://prov.example/", ca_cert_pem=pem
    )
    a = poly(render("poly-vvx", p))
    assert a["reg.1.server.1.transport"] == "UDPOnly"
    assert a["reg.1.srtp.require"] == a["sec.srtp.enable"] == "0"
    assert (a["call.autoOffHook.1.enabled"], a["call.autoOffHook.1.contact"]) == ("1", "100")
    assert a["device.prov.serverName"] == "https://prov.example/"
    assert a["device.prov.serverName.set"] == "1"
    assert a["sec.TLS.customCaCert.1"] == pem.strip()  # line breaks kept through the attribute


@pytest.mark.parametrize(
    "over",
    [
        {"server": ""},
        {"server": "pbx.example\nfeatures.dnd.allow = 1"},
        {"server": "pbx example"},
        {"transport": "tcp"},
        {"port": 70000},
        {"hotline": "0\nfeatures.fwd.allow = 1"},
        {"hotline": "sip:x@y"},
        {"password": "short"},
        {"password": "has space in it"},
        {"password": "semi;colon-pass"},
        {"password": "new\nline-pass-x"},
        {"admin_password": "admin#hash-pass"},
        {"cell": "A1-01\naccount.2.enable = 1"},
        {"provisioning_url": "javascript:alert(1)"},
        {"ca_cert_url": 'https://x/" onload="y'},
        {"ca_cert_pem": "not a certificate"},
    ],
    ids=lambda over: next(iter(over)),
)
def test_values_that_could_add_a_setting_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ProfileError):
        profile(**over)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_value_of_the_profile_is_placed_and_no_placeholder_is_left(model: str) -> None:
    text = render(model, profile(hotline="0", provisioning_url="https://prov.example/x"))
    assert "${" not in text and "$" not in text.replace(PASSWORD, "")
    assert "pbx.prison.example" in text and "https://prov.example/x" in text
