"""Fill the desk-phone templates (callcontrol/data/provision/) with a HandsetProfile.

Two families, each with the parameter names its vendor documents (named in the template's
header and in docs/deploy.md):

- ``yealink-t4x``: Yealink SIP-T4x/T5x, ``key = value`` lines (a <MAC>.cfg file);
- ``poly-vvx``: Poly (Polycom) VVX, an XML file of attributes (listed in the <MAC>.cfg).

Values are escaped for their format: XML attributes through ``quoteattr``; a Yealink value
can only be a checked one-line value (profile.py), and an empty one is written ``%NULL%``
(Yealink's "set it empty"; a blank value would leave what the phone had).
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template
from xml.sax.saxutils import quoteattr

from callcontrol.provision.profile import HandsetProfile
from callcontrol.resources import data_dir

# Yealink T5x phones have up to 16 accounts and 29 line keys (across pages); T4x fewer. A key
# or account a model lacks is ignored by it, so the file is the same for the whole family.
_YEALINK_ACCOUNTS = 16
_YEALINK_LINE_KEYS = 29
_YEALINK_SOFT_KEYS = 4  # programablekey 1-4: the idle screen's soft keys


@dataclass(frozen=True)
class Model:
    name: str
    family: str
    template: str
    suffix: str


MODELS = {
    m.name: m
    for m in (
        Model("yealink-t4x", "Yealink SIP-T4x/T5x (firmware V84-V86)", "yealink-t4x.cfg", ".cfg"),
        Model("poly-vvx", "Poly VVX (UC Software 5.x/6.x)", "poly-vvx.xml", ".cfg"),
    )
}


def render(model: str, profile: HandsetProfile) -> str:
    """The provisioning file's text for ``model`` (one of MODELS)."""
    if model not in MODELS:
        raise KeyError(model)
    text = data_dir("provision", MODELS[model].template).read_text()
    values = _yealink(profile) if model == "yealink-t4x" else _poly(profile)
    return Template(text).substitute(values)


def _yealink(p: HandsetProfile) -> dict[str, str]:
    def value(v: str) -> str:
        return v or "%NULL%"

    others = [f"account.{n}.enable = 0" for n in range(2, _YEALINK_ACCOUNTS + 1)]
    keys = [f"linekey.{n}.type = 0" for n in range(2, _YEALINK_LINE_KEYS + 1)]
    keys += [f"programablekey.{n}.type = 0" for n in range(1, _YEALINK_SOFT_KEYS + 1)]
    return {
        "cell": p.cell,
        "username": p.username,
        "password": p.password,
        "server": p.server,
        "port": str(p.port),
        "yealink_transport": "2" if p.transport == "tls" else "0",
        "yealink_srtp": "2" if p.srtp else "0",
        "other_accounts": "\n".join(others),
        "blank_keys": "\n".join(keys),
        "hotline": value(p.hotline),
        "admin_password": p.admin_password,
        "provisioning_url": value(p.provisioning_url),
        "ca_cert_url": value(p.ca_cert_url),
    }


def _poly(p: HandsetProfile) -> dict[str, str]:
    flag = "1" if p.srtp else "0"
    return {
        "cell": p.cell,  # in a comment: checked to letters, digits, '-' and '_'
        "cell_attr": quoteattr(p.cell),
        "username": quoteattr(p.username),
        "password": quoteattr(p.password),
        "server": quoteattr(p.server),
        "port": quoteattr(str(p.port)),
        "poly_transport": quoteattr("TLS" if p.transport == "tls" else "UDPOnly"),
        "srtp": quoteattr(flag),
        "ca_cert_pem": quoteattr(p.ca_cert_pem),
        "hotline_enabled": quoteattr("1" if p.hotline else "0"),
        "hotline": quoteattr(p.hotline),
        "admin_password": quoteattr(p.admin_password),
        "provisioning_set": quoteattr("1" if p.provisioning_url else "0"),
        "provisioning_url": quoteattr(p.provisioning_url),
    }
