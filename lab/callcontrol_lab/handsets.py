"""The lab's handset passwords: what the simulated handsets dial with.

The database keeps only each handset's digest hash (HA1), which Asterisk checks against; a SIP
client, though, needs the password itself to answer the challenge. In the lab, whoever makes a
password (`callcontrol cell add` or `cell set-password` with [lab] enabled, through the
product's lab hook ``password_made`` below; the load's provisioning) writes it here, and
`callcontrol-sim call` and `callcontrol-sim load` read it.

One JSON object {cell: password} in [lab] handsets_file, mode 0600 in a 0700 folder, rewritten
atomically under a lock. Never written outside the lab: in a prison, handsets are configured by
hand from the password printed once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from callcontrol import private_files
from callcontrol.config import Settings

log = logging.getLogger("callcontrol_lab.handsets")


def path_of(settings: Settings) -> Path:
    return settings.path(settings.lab.handsets_file)


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("lab handsets file %s cannot be read (%s): ignored", path, e)
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


@contextmanager
def _locked(path: Path) -> Iterator[dict[str, str]]:
    with private_files.exclusive(path):
        known = _read(path)
        before = dict(known)
        yield known
        if known != before:
            text = json.dumps(known, indent=1, sort_keys=True) + "\n"
            private_files.write_file(path, text)


def remember(path: Path, passwords: Mapping[str, str]) -> None:
    """Keep these handsets' passwords (cell -> password) in the lab's file."""
    if passwords:
        with _locked(path) as known:
            known.update(passwords)


def recall(path: Path) -> dict[str, str]:
    """Every handset password the lab knows (cell -> password)."""
    private_files.tighten(path)
    return _read(path)


def password_made(settings: Settings, cell: str, password: str) -> None:
    """The product's lab hook (entry point ``handset_password`` in ``callcontrol.lab_hooks``):
    `callcontrol cell add|set-password` with [lab] enabled made this handset's password."""
    remember(path_of(settings), {cell: password})
