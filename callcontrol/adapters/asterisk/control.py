"""Asterisk's own CLI, through its control socket (`asterisk -rx`): what AMI may not do.

The daemon's AMI account has no `system`, `command` or `config` class (so that whoever holds
its secret cannot reload or rewrite Asterisk), hence reloading PJSIP and listing modules or
endpoints go through the control socket instead, which needs the local rights of Asterisk's
user (or its group, with Asterisk's `astctlgroup`) or root. The command is
``[asterisk] cli_command`` (the lab sets its chroot form) followed by ``-rx``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from callcontrol.adapters.asterisk.pjsip_cells import CELLS_CONF
from callcontrol.config import Settings

PJSIP_RELOAD = "module reload res_pjsip.so"


class AsteriskCliError(Exception):
    """Asterisk's CLI could not be reached or refused the command; the message says why."""


def cells_conf_path(settings: Settings) -> Path:
    """Where the cells' endpoints are written: [asterisk] cells_conf, else pjsip_cells.conf in
    Asterisk's configuration folder ([asterisk] astetcdir)."""
    a = settings.asterisk
    return settings.path(a.cells_conf or f"{a.astetcdir}/{CELLS_CONF}")


def rx(settings: Settings, command: str, timeout: float = 20.0) -> str:
    """Run one CLI command ([asterisk] cli_command + -rx); its output. Blocking: the daemon
    calls it in a thread."""
    argv = [*settings.asterisk.cli_command, "-rx", command]
    shown = " ".join(settings.asterisk.cli_command) + " -rx"
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AsteriskCliError(f"`{shown}` failed: {e}") from None
    if proc.returncode != 0:
        why = " ".join((proc.stderr or proc.stdout).split()) or f"status {proc.returncode}"
        raise AsteriskCliError(f"`{shown}` failed: {why}")
    return proc.stdout


def reload_pjsip(settings: Settings) -> None:
    """Reload PJSIP (the cells' endpoints); AsteriskCliError unless Asterisk says it did."""
    out = rx(settings, PJSIP_RELOAD, timeout=30)
    if "reloaded" not in out.lower() and "queued" not in out.lower():
        raise AsteriskCliError(f"Asterisk did not reload PJSIP: {' '.join(out.split())}")
