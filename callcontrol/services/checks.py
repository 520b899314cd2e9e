"""Checks on the plain values an operator, an officer or a prisoner gives: names, numbers,
texts, reasons, PINs, amounts. Each returns the value as it is to be kept, or raises Invalid
with a sentence for the person who typed it. No I/O."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from callcontrol.domain.model import ContactKind
from callcontrol.domain.numbers import normalise_for_list
from callcontrol.domain.pins import valid_pin_format
from callcontrol.services.errors import Invalid

CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
PRISON_NUMBER = re.compile(r"[A-Za-z0-9]{1,32}")
# A SIP password goes into pjsip.conf: printable ASCII, no space, no comment characters.
SIP_PASSWORD = re.compile(r"[!-~]{12,128}")
SIP_PASSWORD_FORBIDDEN = ";#"
GENERATED_PASSWORD_LENGTH = 24
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
MAX_REASON = 2000
MAX_LABEL = 200
MAX_NAME = 200
MAX_BY = 100


def text(value: Any, what: str, max_len: int, required: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be text")
    value = value.strip()
    if required and not value:
        raise Invalid(f"{what} must not be empty")
    if len(value) > max_len:
        raise Invalid(f"{what} is too long (at most {max_len} characters)")
    if any(not ch.isprintable() for ch in value):
        raise Invalid(f"{what} contains control characters")
    return value


def reason(value: Any, required: bool = False) -> str:
    """A reason for the record: spaces folded, at most MAX_REASON characters."""
    value = "" if value is None else value
    if not isinstance(value, str):
        raise Invalid("reason must be text")
    value = " ".join(value.split())
    if required and not value:
        raise Invalid("a reason is required")
    if len(value) > MAX_REASON:
        raise Invalid(f"reason is too long (at most {MAX_REASON} characters)")
    if any(not ch.isprintable() for ch in value):
        raise Invalid("reason contains control characters")
    return value


def by(value: str) -> str:
    return text(value, "changed by", MAX_BY, required=True)


def cell_name(name: Any) -> str:
    if not isinstance(name, str) or not CELL_NAME.fullmatch(name):
        raise Invalid(
            f"invalid cell name {name!r}: 1 to 32 letters, digits, '-' or '_', not '-' or '_' first"
        )
    return name


def prison_number(number: Any) -> str:
    if not isinstance(number, str) or not PRISON_NUMBER.fullmatch(number):
        raise Invalid(f"invalid prison number {number!r}: 1 to 32 letters or digits")
    return number


def sip_password(password: str) -> str:
    """The password if pjsip.conf can hold it safely, else Invalid."""
    if not SIP_PASSWORD.fullmatch(password) or any(c in password for c in SIP_PASSWORD_FORBIDDEN):
        raise Invalid(
            "invalid SIP password: 12 to 128 printable ASCII characters, without spaces, ';' or '#'"
        )
    return password


def generate_sip_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))


def pin(value: Any, pin_digits: int) -> str:
    if not isinstance(value, str) or not valid_pin_format(value, pin_digits):
        raise Invalid(f"invalid PIN: it must be exactly {pin_digits} digits")
    return value


def list_number(number: Any, region: str) -> str:
    """The number normalised for a list (E.164 or a short code), else Invalid."""
    if not isinstance(number, str):
        raise Invalid("a number must be text")
    result = normalise_for_list(number, region)
    if not result.ok or result.number is None:
        raise Invalid(f"cannot list number {number!r}: {result.problem or 'not understood'}")
    return result.number


def kind(value: Any) -> ContactKind:
    try:
        return ContactKind(value)
    except ValueError:
        raise Invalid(f"invalid contact kind {value!r}: social or legal") from None


def whole(value: object, what: str, positive: bool = False, nonzero: bool = False) -> int:
    """``value`` if it is a whole number (not a bool) as required, else Invalid."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{what} must be a whole number, not {value!r}")
    if positive and value <= 0:
        raise Invalid(f"{what} must be more than 0, not {value}")
    if nonzero and value == 0:
        raise Invalid(f"{what} must not be 0")
    if not positive and not nonzero and value < 0:
        raise Invalid(f"{what} must not be negative, not {value}")
    return value
