"""What a running Asterisk should have for callcontrol, taken from the packaged configuration
(callcontrol/data/asterisk, callcontrol/data/dialplan) and the settings; and how what it has
differs from that, one line per difference (`callcontrol asterisk check`).

Pure: the observations are gathered elsewhere (adapters/asterisk/observe.py) and handed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from callcontrol import channel_vars as cv
from callcontrol.config import Settings
from callcontrol.resources import asterisk_templates_dir, dialplan_dir

# AMI actions that only the classes the daemon's account must never have allow: system
# (modules, reloads, dialplan changes), command (CLI commands) and config (read or write any
# configuration file, the AMI secrets among them).
FORBIDDEN_ACTIONS = {
    "Command": "command",
    "ModuleLoad": "system",
    "ModuleCheck": "system",
    "Reload": "system",
    "DialplanExtensionAdd": "system",
    "DialplanExtensionRemove": "system",
    "GetConfig": "config",
    "GetConfigJSON": "config",
    "UpdateConfig": "config",
    "CreateConfig": "config",
}
# What the daemon sends (channels, cut a call, ring an officer's desk) and what this check
# reads (contexts, globals).
NEEDED_ACTIONS = ("CoreShowChannels", "Hangup", "Originate", "ShowDialPlan", "Getvar")
FORBIDDEN_CLASSES = ("system", "command", "config", "all")


def _lines(path: Path) -> list[str]:
    return [line.split(";", 1)[0].strip() for line in path.read_text().splitlines()]


def packaged_modules() -> list[str]:
    """The modules our modules.conf loads: the dialplan and the daemon need each."""
    found = (
        re.fullmatch(r"load\s*=>\s*(\S+\.so)", line)
        for line in _lines(asterisk_templates_dir() / "modules.conf")
    )
    return [m.group(1) for m in found if m]


def packaged_contexts() -> list[str]:
    """The dialplan contexts of the packaged cells dialplan (cells.conf)."""
    found = (re.fullmatch(r"\[([A-Za-z0-9_-]+)\]", line) for line in _lines(_cells_conf()))
    return [m.group(1) for m in found if m]


def _cells_conf() -> Path:
    return dialplan_dir() / "cells.conf"


def packaged_globals() -> list[str]:
    """The CC_ globals our extensions.conf sets."""
    found = (
        re.fullmatch(r"(CC_[A-Z0-9_]+)\s*=.*", line)
        for line in _lines(asterisk_templates_dir() / "extensions.conf")
    )
    return [m.group(1) for m in found if m]


def packaged_ami_classes() -> tuple[list[str], list[str]]:
    """The read and write classes our manager.conf gives the daemon's account."""
    values: dict[str, list[str]] = {}
    for line in _lines(asterisk_templates_dir() / "manager.conf"):
        m = re.fullmatch(r"(read|write)\s*=\s*(\S+)", line)
        if m:
            values[m.group(1)] = sorted(m.group(2).split(","))
    return values.get("read", []), values.get("write", [])


def expected_global_values(settings: Settings, agi_secret: str) -> dict[str, str]:
    """The globals whose value follows from the settings alone (the others must be set)."""
    s = settings
    agi_url = f"agi://{s.agi.host}:{s.agi.port}/{agi_secret}"
    return {
        "CC_AGI_URL": agi_url,
        "CC_DECIDE_AGI": f"{agi_url}/{cv.CELL_CALL_SCRIPT}",
        "CC_CELLS_CONTEXT": "cells",
        "CC_DECIDE_TIMEOUT": str(int(s.agi.session_timeout_s) + 5),
        "CC_RING_TIMEOUT": str(s.asterisk.ring_timeout_s),
        "CC_ACCEPT_DIGIT": s.billing.accept_digit,
        "CC_ACCEPT_TIMEOUT": str(s.billing.accept_timeout_s),
        "CC_WARNING_MS": str(s.billing.warning_s * 1000),
        "CC_WARNING_REPEAT_MS": str(s.billing.warning_repeat_s * 1000),
    }


@dataclass
class Observed:
    """What Asterisk said; None where it could not be asked (``unreachable`` says why)."""

    modules: set[str] | None = None
    ami_classes: tuple[list[str], list[str]] | None = None  # read, write (CLI)
    ami_actions: set[str] | None = None  # what the daemon's login may send (ListCommands)
    # Events the daemon's login received during the check that the packaged eventfilter keeps
    # back (events.unused_event): none unless its manager.conf lacks that filter.
    ami_unused_events: set[str] | None = None
    contexts: dict[str, bool] | None = None  # context -> present
    globals: dict[str, str] | None = None
    endpoints: set[str] | None = None
    unreachable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Expected:
    modules: list[str]
    ami_user: str
    ami_classes: tuple[list[str], list[str]]
    contexts: list[str]
    globals: list[str]
    global_values: Mapping[str, str]
    handsets: Mapping[str, bool]  # SIP username -> enabled
    secret: str = ""  # never shown: replaced by *** in every line


def expected(settings: Settings, agi_secret: str, handsets: Mapping[str, bool]) -> Expected:
    return Expected(
        modules=packaged_modules(),
        ami_user=settings.ami.username,
        ami_classes=packaged_ami_classes(),
        contexts=packaged_contexts(),
        globals=packaged_globals(),
        global_values=expected_global_values(settings, agi_secret) if agi_secret else {},
        handsets=handsets,
        secret=agi_secret,
    )


def differences(want: Expected, got: Observed) -> list[str]:
    """One line per difference; empty when Asterisk is as it should be."""
    out = list(got.unreachable)
    if got.modules is not None:
        out += [f"module {m}: not loaded" for m in want.modules if m not in got.modules]
    out += _ami(want, got)
    if got.contexts is not None:
        out += [f"dialplan context [{c}]: missing" for c in want.contexts if not got.contexts[c]]
    if got.globals is not None:
        out += _globals(want, got.globals)
    if got.endpoints is not None:
        for user, enabled in sorted(want.handsets.items()):
            if enabled and user not in got.endpoints:
                out.append(f"PJSIP endpoint {user}: missing (the cell is enabled)")
            elif not enabled and user in got.endpoints:
                out.append(f"PJSIP endpoint {user}: present although the cell is disabled")
    return [line.replace(want.secret, "***") if want.secret else line for line in out]


def _ami(want: Expected, got: Observed) -> list[str]:
    out = []
    who = f"AMI user {want.ami_user}"
    if got.ami_classes is not None:
        for kind, has, should in zip(
            ("read", "write"), got.ami_classes, want.ami_classes, strict=True
        ):
            bad = sorted(set(has) & set(FORBIDDEN_CLASSES))
            if bad:
                out.append(f"{who}: {kind} classes include {','.join(bad)} (never allowed)")
            if sorted(has) != sorted(should):
                out.append(
                    f"{who}: {kind} classes are {','.join(sorted(has)) or '(none)'}, "
                    f"expected {','.join(should)}"
                )
    if got.ami_actions is not None:
        for action, cls in FORBIDDEN_ACTIONS.items():
            if action in got.ami_actions:
                out.append(f"{who}: may send {action} (class {cls}: never allowed)")
        for action in NEEDED_ACTIONS:
            if action not in got.ami_actions:
                out.append(f"{who}: may not send {action}, which callcontrol needs")
    if got.ami_unused_events:
        out.append(
            f"{who}: receives events callcontrol does not use "
            f"({', '.join(sorted(got.ami_unused_events))}): the eventfilter line of the "
            "packaged manager.conf is missing"
        )
    return out


def _globals(want: Expected, got: Mapping[str, str]) -> list[str]:
    out = []
    for name in want.globals:
        value = got.get(name, "")
        if not value:
            out.append(f"global {name}: not set")
        elif name in want.global_values and value != want.global_values[name]:
            if name == "CC_AGI_URL" and want.secret and want.secret not in value:
                out.append(f"global {name}: does not carry the secret of [agi] secret_file")
            else:
                out.append(f"global {name}: is {value}, expected {want.global_values[name]}")
    return out
