"""What number did the prisoner dial? Cleaning and normalising telephone numbers.

Pure functions over strings, built on the ``phonenumbers`` metadata. Nothing here
raises on a dialled string: a number that cannot be understood comes back refused,
with a short reason for the log.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, shortnumberinfo

from callcontrol.domain.dialling import without_end_key

MAX_DIGITS = 20
MIN_DIGITS = 3

# Formatting characters a person (or a phone's display) might put in a number.
_FORMATTING = str.maketrans("", "", " -.()")
_WELL_FORMED = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True)
class Normalised:
    """The result of normalising a number: the number, or why it was refused."""

    number: str | None  # "+442079460000" (E.164) or a short code "116123"; None when refused
    emergency: bool = False  # an emergency short code (999, 112 in GB) for the region
    problem: str = ""  # "" when fine, else a short human-readable reason for the log

    @property
    def ok(self) -> bool:
        return self.number is not None and not self.problem


def _refused(problem: str) -> Normalised:
    return Normalised(number=None, problem=problem)


def _clean(raw: str) -> tuple[str, str]:
    """Drop formatting; return (digits with optional leading '+', problem)."""
    if not isinstance(raw, str):
        return "", "not text"
    cleaned = raw.translate(_FORMATTING)
    if not cleaned:
        return "", "empty"
    if _WELL_FORMED.fullmatch(cleaned):
        digit_count = len(cleaned) - cleaned.startswith("+")
        if digit_count > MAX_DIGITS:
            return "", "too long"
        if digit_count < MIN_DIGITS:
            return "", "too short"
        return cleaned, ""
    # Say what is wrong, most telling first.
    if any(ch.isalpha() for ch in cleaned):
        return "", "contains letters"
    if "*" in cleaned or "#" in cleaned:
        return "", "contains * or #"
    if cleaned == "+":
        return "", "empty"
    if set(cleaned) <= set("+0123456789"):
        return "", "'+' is only allowed once, at the start"
    return "", "contains characters other than digits"


def _parse(digits: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(digits, region)
    except NumberParseException:
        return None


def _valid_full_number(digits: str, region: str) -> str | None:
    """E.164 form when ``digits`` is a valid full number for ``region``, else None."""
    parsed = _parse(digits, region)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def _valid_short_number(digits: str, region: str) -> bool:
    """True when ``digits`` (no '+') is a valid short number dialled in ``region``."""
    if digits.startswith("+"):
        return False
    parsed = _parse(digits, region)
    if parsed is None:
        return False
    return bool(shortnumberinfo.is_valid_short_number_for_region(parsed, region))


def _is_emergency(digits: str, region: str) -> bool:
    # Exact match only ("999", "112"); a number merely starting with 999 is not one.
    if digits.startswith("+"):
        return False
    return bool(shortnumberinfo.is_emergency_number(digits, region))


def normalise_dialled(
    dialled: str, region: str = "GB", listed_short_codes: Collection[str] = ()
) -> Normalised:
    """Normalise what a prisoner dialled.

    Emergency codes come back flagged ``emergency``; short codes only when they are in
    ``listed_short_codes`` (the global numbers list); anything else must be a valid full
    number and comes back in E.164. One trailing "#" (the key that ends a number) is dropped.
    """
    digits, problem = _clean(without_end_key(dialled) if isinstance(dialled, str) else dialled)
    if problem:
        return _refused(problem)
    if _is_emergency(digits, region):
        return Normalised(number=digits, emergency=True)
    if not digits.startswith("+") and digits in listed_short_codes:
        return Normalised(number=digits)
    e164 = _valid_full_number(digits, region)
    if e164 is not None:
        return Normalised(number=e164)
    if _valid_short_number(digits, region):
        return _refused("a short number that is not listed")
    return _refused(f"not a valid number for {region}")


def normalise_for_list(number: str, region: str = "GB") -> Normalised:
    """Normalise a number an operator is adding to a list (contacts, global numbers).

    Accepts valid full numbers (-> E.164) and valid short numbers (-> digits).
    Emergency codes are refused: they are never listed.
    """
    digits, problem = _clean(number)
    if problem:
        return _refused(problem)
    if _is_emergency(digits, region):
        return _refused("an emergency number cannot be listed")
    e164 = _valid_full_number(digits, region)
    if e164 is not None:
        return Normalised(number=e164)
    if _valid_short_number(digits, region):
        return Normalised(number=digits)
    return _refused(f"not a valid number for {region}")


def is_short_code(number: str) -> bool:
    """True for a normalised short code ("116123"), False for E.164 ("+44...")."""
    return bool(number) and number.isascii() and number.isdigit()


_DOMESTIC_CLASSES = {
    PhoneNumberType.FIXED_LINE: "uk_landline",
    PhoneNumberType.MOBILE: "uk_mobile",
}


def destination_class(e164: str, region: str) -> str:
    """Tariff class of a normalised number, seen from a site in ``region``.

    "uk_landline" | "uk_mobile" (a number in the site's own country code), "international"
    (any other country code), "short" (a short code), "other" (freephone, premium rate,
    non-geographic, personal numbers, or not understood).
    """
    if is_short_code(e164):
        return "short"
    if not e164.startswith("+"):
        return "other"
    parsed = _parse(e164, region)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return "other"
    if parsed.country_code != phonenumbers.country_code_for_region(region):
        return "international"
    return _DOMESTIC_CLASSES.get(phonenumbers.number_type(parsed), "other")
