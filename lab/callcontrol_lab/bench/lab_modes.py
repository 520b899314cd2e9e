"""The benchmark's three ways to decide the same handset call, as switches of one lab.

- ``static``: dialplan/bench.conf's ``bench-static`` bridges every call without asking anyone
  (Asterisk alone: the limit).
- ``daemon``: dialplan/cells.conf asks the daemon over FastAGI (production).
- ``pyst2``: cells.conf runs a classic per-call AGI script (lab/callcontrol_lab/bench/pyst2_agi.py),
  forked by Asterisk for every call; the daemon still settles the calls' ends.

A running lab switches at once (PJSIP and the dialplan are reloaded); calls in progress go on
as they were. ``switch_mode(lab, "daemon")`` puts back the production set-up.
"""

from __future__ import annotations

from typing import Literal, get_args

from callcontrol_lab.bench import pyst2_root
from callcontrol_lab.lab import DEFAULT_CELLS_CONTEXT, Lab

Mode = Literal["static", "daemon", "pyst2"]
MODES: tuple[str, ...] = get_args(Mode)
STATIC_CONTEXT = "bench-static"


def switch_mode(lab: Lab, mode: str, *, pyst2_agi: str | None = None) -> None:
    """Send the cells' new calls through ``mode``. For pyst2, ``pyst2_agi`` is the path that
    ``pyst2_root.prepare(lab)`` returned; without it the script is prepared here (idempotent,
    about a second once done). ValueError for an unknown mode, LabError if the lab refuses."""
    if mode == "static":
        lab.switch(cells_context=STATIC_CONTEXT)
    elif mode == "daemon":
        lab.switch(cells_context=DEFAULT_CELLS_CONTEXT)
    elif mode == "pyst2":
        agi = pyst2_agi or pyst2_root.prepare(lab)
        lab.switch(cells_context=DEFAULT_CELLS_CONTEXT, decide_agi=agi)
    else:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")


def current_mode(lab: Lab) -> str:
    """The mode this Lab object was last rendered for."""
    if lab.cells_context == STATIC_CONTEXT:
        return "static"
    return "daemon" if lab.decide_agi is None else "pyst2"
