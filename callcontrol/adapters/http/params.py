"""Strict reading of the API's path and query parameters: a clear 400 for anything else.

Whoever holds a token (or has stolen one) may send anything: very long values, control
characters, odd percent-encodings (aiohttp has decoded them by the time a handler looks),
a parameter twice, parameters nobody reads. Each is refused here before any service or
database sees it, with an error that says what was expected, and that never echoes more than
a short, escaped piece of what was sent (the answer and the log line stay readable).

The patterns are the same as the description's (data/openapi/*.json) and the stores':
a cell name, a prison number, a contact's number.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from aiohttp import web

from callcontrol.adapters.http.errors import ApiError

CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
PRISON_NUMBER = re.compile(r"[A-Za-z0-9]{1,32}")
CONTACT_NUMBER = re.compile(r"\+?[0-9]{1,32}")
MAX_VALUE = 200  # characters in any query parameter's value
SHOWN = 40  # characters of a refused value shown back


def shown(value: str) -> str:
    """A refused value as it may be shown back: escaped (repr) and cut short."""
    text = repr(value[:SHOWN])
    return text + "..." if len(value) > SHOWN else text


def query(request: web.Request, allowed: Collection[str]) -> Mapping[str, str]:
    """The query parameters, each at most once, all known, printable and not too long."""
    params = request.query
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(shown(name) for name in unknown[:5])
        known = ", ".join(sorted(allowed)) or "none"
        raise ApiError(400, f"unknown query parameter(s) {names} (this route takes: {known})")
    for name in params:
        if len(params.getall(name)) > 1:
            raise ApiError(400, f"query parameter {name} is given more than once")
        value = params[name]
        if len(value) > MAX_VALUE:
            raise ApiError(400, f"query parameter {name} is too long (at most {MAX_VALUE})")
        if not value.isprintable():
            raise ApiError(400, f"query parameter {name} contains control characters")
    return {name: params[name] for name in params}


def matching(value: str, pattern: re.Pattern[str], what: str, rule: str) -> str:
    """``value`` if it matches ``pattern`` whole; else 400 saying ``rule``."""
    if not pattern.fullmatch(value) or not value.isascii():
        raise ApiError(400, f"invalid {what} {shown(value)}: {rule}")
    return value


CELL_RULE = "1 to 32 letters, digits, '-' or '_', beginning with a letter or digit"
PRISON_NUMBER_RULE = "1 to 32 letters or digits"
CONTACT_RULE = "digits, optionally after a '+' (e.g. +442079460000 or 02079460000), at most 32"


def cell_name(request: web.Request, key: str = "name") -> str:
    return matching(request.match_info[key], CELL_NAME, "cell name", CELL_RULE)


def prison_number(request: web.Request, key: str = "number") -> str:
    return matching(request.match_info[key], PRISON_NUMBER, "prison number", PRISON_NUMBER_RULE)


def contact_number(request: web.Request, key: str = "contact") -> str:
    return matching(request.match_info[key], CONTACT_NUMBER, "contact number", CONTACT_RULE)


def whole(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A whole number between ``lo`` and ``hi`` (ASCII digits only: no sign, no spaces)."""
    text = params.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ApiError(400, f"{name} must be a whole number, not {shown(text)}")
    value = int(text)
    if not lo <= value <= hi:
        raise ApiError(400, f"{name} must be between {lo} and {hi}")
    return value


def optional_whole(params: Mapping[str, str], name: str, lo: int, hi: int) -> int | None:
    return whole(params, name, lo, lo, hi) if name in params else None


def choice(params: Mapping[str, str], name: str, choices: Collection[str]) -> str | None:
    """One of ``choices``, or None when the parameter is not given."""
    text = params.get(name)
    if text is not None and text not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}, not {shown(text)}")
    return text


def flag(params: Mapping[str, str], name: str) -> bool | None:
    """true or false, or None when not given."""
    text = choice(params, name, ("true", "false"))
    return None if text is None else text == "true"
