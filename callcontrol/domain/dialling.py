"""How a handset dials: en bloc (the number in the INVITE) or in two stages (a service number,
then the PIN, then the number keyed on the keypad). Either way, what is dialled may also be a
service code answered after the PIN instead of a call (the balance enquiry, [site]
balance_code). Pure rules; the FastAGI adapter drives them.

What the dialplan accepts (callcontrol/data/dialplan/cells.conf, step 1) is 1 to 32 of
0-9 + * #; keyed digits are held to the same rule here, since they never pass that check.
"""

from __future__ import annotations

import re

# cells.conf's check of what was dialled: LEN 1..32 and FILTER(0-9+*#).
_DIALPLAN_VALID = re.compile(r"[0-9+*#]{1,32}")
# The key that ends a number (and a PIN): never part of it.
END_KEY = "#"
# The most keys a two-stage number is read to: the dialplan's longest.
MAX_NUMBER_KEYS = 32


def without_end_key(dialled: str) -> str:
    """``dialled`` without one trailing "#": en bloc "02079460000#" is the number 02079460000."""
    return dialled[: -len(END_KEY)] if dialled.endswith(END_KEY) else dialled


def is_code(dialled: str, code: str) -> bool:
    """Is ``dialled`` (en bloc, or keyed in two stages) this service code? "" is no code."""
    return bool(code) and without_end_key(dialled) == code


def is_two_stage(dialled: str, two_stage_number: str) -> bool:
    """Did the handset dial the service number that asks for the number after the PIN?"""
    return is_code(dialled, two_stage_number)


def keyed_number_problem(keyed: str) -> str | None:
    """Why keyed digits are not a number to decide on (the dialplan's rule), or None."""
    if not keyed:
        return "no number keyed"
    if not _DIALPLAN_VALID.fullmatch(keyed):
        return "keyed digits the dialplan would refuse"
    return None
