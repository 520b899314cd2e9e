"""The prisoners' kiosk: its rules, as plain functions of plain values. Pure.

Who may sign in, how long a session lasts, and which new PINs a prisoner may choose. The
lockout itself is the handset's (domain/pin_lockout.py): a PIN keyed at the kiosk for a prison
number counts against the handset of that prisoner's cell, so the kiosk gives a guesser no
tries beyond the handset's own (docs/kiosk.md).
"""

from __future__ import annotations

import enum

from callcontrol.domain.pins import valid_pin_format, weak_pin

# A cell name never matches this (cell names start with a letter or digit): the tries of a prison
# number that has no account are counted here, which the store finds no handset for.
NO_CELL = ""
MAX_PRISON_NUMBER = 32


def typed_prison_number(text: str) -> str:
    """The prison number as typed, trimmed; "" when it cannot be one (so nothing is looked up
    with it beyond the same single read every attempt makes)."""
    number = text.strip()
    if not number or len(number) > MAX_PRISON_NUMBER or not (number.isascii() and number.isalnum()):
        return ""
    return number


class NewPinProblem(enum.Enum):
    """Why a new PIN is refused, in the prisoner's words (a cellmate's PIN is the store's
    check: see services/kiosk.py)."""

    FORMAT = "The new PIN must be {digits} digits."
    MISMATCH = "The two new PINs are not the same. Type the new PIN twice."
    WEAK = (
        "That PIN is too easy to guess. Do not repeat a digit next to itself "
        "or use a run like 1234."
    )
    SAME = "The new PIN must be different from the old one."
    TAKEN = "Choose a different PIN."

    def text(self, digits: int) -> str:
        return self.value.format(digits=digits)


def new_pin_problem(old: str, new: str, again: str, digits: int) -> NewPinProblem | None:
    """What is wrong with a new PIN a prisoner chose, checked on its own (not yet against the
    cellmates'); None when it may be used."""
    if not valid_pin_format(new, digits):
        return NewPinProblem.FORMAT
    if new != again:
        return NewPinProblem.MISMATCH
    if weak_pin(new):
        return NewPinProblem.WEAK
    if new == old:
        return NewPinProblem.SAME
    return None
