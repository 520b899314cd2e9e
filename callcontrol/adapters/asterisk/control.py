"""Asterisk's own CLI, through its control socket (`asterisk -rx`): what AMI may not do.

The daemon's AMI account has no `system`, `command` or `config` class (so that whoever holds
its secret cannot reload or rewrite Asterisk), hence reloading PJSIP and listing modules or
endpoints go through the control socket instead, which needs the local rights of Asterisk's
user (or its group, with Asterisk's `astctlgroup`) or root. The lab's Asterisk when
``[asterisk] cells_conf`` is empty (the lab's), else the `asterisk` on the PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from callcontrol.config import Settings

PJSIP_RELOAD = "module reload res_pjsip.so"


class AsteriskCliError(Exception):
    """Asterisk's CLI could not be reached or refused the command; the message says why."""


def cells_conf_path(settings: Settings) -> Path:
    """Where the cells' PJSIP endpoints are written: [asterisk] cells_conf, else the lab's."""
    if settings.asterisk.cells_conf:
        return settings.path(settings.asterisk.cells_conf)
    from callcontrol.lab.lab import Lab, LabError

    try:
        return Lab(settings).cells_conf_path
    except LabError as e:
        raise AsteriskCliError(str(e)) from None


def rx(settings: Settings, command: str, timeout: float = 20.0) -> str:
    """Run one CLI command; its output. Blocking: the daemon calls it in a thread."""
    if not settings.asterisk.cells_conf:
        from callcontrol.lab.lab import Lab, LabError  # the lab's Asterisk

        try:
            return Lab(settings).rx(command, timeout)
        except LabError as e:
            raise AsteriskCliError(str(e)) from None
    try:
        proc = subprocess.run(
            ["asterisk", "-rx", command], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AsteriskCliError(f"`asterisk -rx` failed: {e}") from None
    if proc.returncode != 0:
        why = " ".join((proc.stderr or proc.stdout).split()) or f"status {proc.returncode}"
        raise AsteriskCliError(f"`asterisk -rx` failed: {why}")
    return proc.stdout


def reload_pjsip(settings: Settings) -> None:
    """Reload PJSIP (the cells' endpoints); AsteriskCliError unless Asterisk says it did."""
    out = rx(settings, PJSIP_RELOAD, timeout=30)
    if "reloaded" not in out.lower() and "queued" not in out.lower():
        raise AsteriskCliError(f"Asterisk did not reload PJSIP: {' '.join(out.split())}")
