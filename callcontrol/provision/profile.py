"""What a desk phone's provisioning file carries, as plain checked values.

Every value lands in a vendor file that is parsed line by line (Yealink ``key = value``) or as
XML attributes (Poly): a value with a line break, a control character or an unexpected shape
could add a setting of its own (an attacker who controls a cell's name or a hotline number
could unlock the keypad), so each value is checked here, before any template sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRANSPORTS = ("udp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tls": 5061}

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HOTLINE = re.compile(r"[0-9*#+]{1,32}")
_URL = re.compile(r"(https?|ftps?|tftp)://[^\s\"'<>\\]{1,2000}")
# What a SIP password may hold (adapters/db/admin.py checks it is made this way): printable
# ASCII without spaces, ';' or '#'. The phones' admin password is held to the same.
_SECRET = re.compile(r"[!-~]{8,128}")
_SECRET_FORBIDDEN = (";", "#")


class ProfileError(ValueError):
    """A value that cannot go into a provisioning file; the message says which and why."""


@dataclass(frozen=True)
class HandsetProfile:
    """One cell's handset: its SIP account on Asterisk and the phone's own admin password."""

    cell: str
    username: str
    password: str
    server: str
    transport: str
    port: int
    admin_password: str
    hotline: str = ""
    provisioning_url: str = ""
    ca_cert_url: str = ""
    ca_cert_pem: str = ""

    @property
    def srtp(self) -> bool:
        """SRTP is required exactly when signalling is over TLS (SDES keys travel in the SDP,
        so SRTP over plain UDP would hand the keys to anyone on the wire)."""
        return self.transport == "tls"


def make_profile(
    *,
    cell: str,
    username: str,
    password: str,
    server: str,
    transport: str,
    port: int,
    admin_password: str,
    hotline: str = "",
    provisioning_url: str = "",
    ca_cert_url: str = "",
    ca_cert_pem: str = "",
) -> HandsetProfile:
    """A HandsetProfile, every value checked (ProfileError says what is wrong)."""
    if not server:
        raise ProfileError(
            "[provision] sip_server is not set: the address the handsets reach Asterisk at"
        )
    if not _HOST.fullmatch(server):
        raise ProfileError(f"[provision] sip_server {server!r} is not a host name or address")
    if transport not in TRANSPORTS:
        raise ProfileError("[provision] transport must be 'udp' or 'tls'")
    port = port or DEFAULT_PORTS[transport]
    if not 0 < port < 65536:
        raise ProfileError(f"[provision] sip_port {port} is out of range")
    if not _USERNAME.fullmatch(username) or not _USERNAME.fullmatch(cell):
        raise ProfileError(f"cell {cell!r}: its SIP username {username!r} cannot be provisioned")
    _check_secret(password, "the SIP password")
    _check_secret(admin_password, "the handsets' admin password ([provision] admin_password_file)")
    if hotline and not _HOTLINE.fullmatch(hotline):
        raise ProfileError("[provision] hotline: 1 to 32 of 0-9 * # +")
    for name, url in (("provisioning_url", provisioning_url), ("ca_cert_url", ca_cert_url)):
        if url and not _URL.fullmatch(url):
            raise ProfileError(f"[provision] {name} {url!r} is not an http(s), ftp(s) or tftp URL")
    if ca_cert_pem and not _is_pem_certificate(ca_cert_pem):
        raise ProfileError("[provision] ca_cert_file holds no PEM certificate")
    return HandsetProfile(
        cell=cell,
        username=username,
        password=password,
        server=server,
        transport=transport,
        port=port,
        admin_password=admin_password,
        hotline=hotline,
        provisioning_url=provisioning_url,
        ca_cert_url=ca_cert_url,
        ca_cert_pem=ca_cert_pem.strip(),
    )


def _check_secret(value: str, what: str) -> None:
    if not _SECRET.fullmatch(value) or any(c in value for c in _SECRET_FORBIDDEN):
        raise ProfileError(
            f"{what} cannot be provisioned: 8 to 128 printable ASCII characters, "
            "without spaces, ';' or '#'"
        )


def _is_pem_certificate(text: str) -> bool:
    body = text.strip()
    return (
        body.startswith("-----BEGIN CERTIFICATE-----")
        and body.endswith("-----END CERTIFICATE-----")
        and all(line.isprintable() for line in body.splitlines())
    )
