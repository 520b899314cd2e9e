"""Asterisk's configuration rendered from the packaged templates and the settings.

The templates (callcontrol/data/asterisk/*.conf, the dialplan in callcontrol/data/dialplan, the
prompts in callcontrol/data/asterisk/sounds) hold ``@@NAME@@`` placeholders; ``values`` fills
them from the settings (data/asterisk/README.md lists them), ``files`` renders every file, and
``write`` writes them into a folder. `callcontrol asterisk render` and the lab use this same
code: the lab only overrides some values (its own folders, its chroot) and adds its dialplan.

Rendered files hold secrets (the FastAGI URL's in extensions.conf, the AMI's in manager.conf):
written mode 0640, manager.conf 0600.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.secret import AgiSecretError, load_secret
from callcontrol.config import ConfigError, Settings, journal_path, recordings_spool
from callcontrol.resources import asterisk_templates_dir, dialplan_dir

PLACEHOLDER = re.compile(r"@@([A-Z0-9_]+)@@")
PRIVATE_FILE = 0o640
SECRET_FILE = 0o600  # manager.conf: Asterisk's user only, not its group
SECRET_FILES = frozenset({"manager.conf"})
NEW_DIR = 0o750
# Where Debian (and a source build) keep Asterisk's modules: astmoddir when not set.
MODULE_DIRS = ("usr/lib/*/asterisk/modules", "usr/lib/asterisk/modules")


class RenderError(Exception):
    """The configuration could not be rendered or written; the message says why (one line)."""


@dataclass(frozen=True)
class Rendered:
    """One file to write: its path inside the configuration folder, its content and mode."""

    name: str
    content: bytes
    mode: int


def modules_dir(root: Path = Path("/")) -> str:
    """Asterisk's modules folder under ``root``, as Asterisk sees it (from ``root``)."""
    for pattern in MODULE_DIRS:
        found = sorted(root.glob(pattern))
        if found:
            return "/" + str(found[0].relative_to(root))
    raise RenderError(
        f"no Asterisk modules folder under {root} ({', '.join(MODULE_DIRS)}): "
        "set [asterisk] astmoddir"
    )


def agi_url(settings: Settings) -> str:
    """CC_AGI_URL: the daemon's FastAGI address with the shared secret ([agi] secret_file,
    created 0640 when missing) as its first path segment. Never log it."""
    agi = settings.agi
    try:
        secret = load_secret(settings.path(agi.secret_file), create=True, group=agi.secret_group)
    except AgiSecretError as e:
        raise RenderError(str(e)) from None
    return f"agi://{agi.host}:{agi.port}/{secret}"


def values(settings: Settings, **overrides: str) -> dict[str, str]:
    """Every placeholder's value from the settings (``overrides`` replace some: the lab's).

    The AMI secret comes from [ami] secret / secret_file (a random one is made, 0600, when the
    file is missing, and reused when present); the FastAGI secret likewise (agi_url)."""
    s, a = settings, settings.asterisk
    try:
        ami_secret = s.ami_secret(create=True)
        journal = overrides.get("JOURNAL") or str(journal_path(s))
        recordings = overrides.get("RECORDINGS") or str(recordings_spool(s))
    except ConfigError as e:
        raise RenderError(str(e)) from None
    url = overrides.get("AGI_URL") or agi_url(s)
    found = {
        "CONF_DIR": a.astetcdir,
        "MOD_DIR": a.astmoddir or ("" if "MOD_DIR" in overrides else modules_dir()),
        "RUN_DIR": a.astrundir,
        "SPOOL_DIR": a.astspooldir,
        "LOG_DIR": a.astlogdir,
        "LIB_DIR": a.astdbdir,
        "AMI_PORT": str(s.ami.port),
        "AMI_USERNAME": s.ami.username,
        "AMI_SECRET": ami_secret,
        "PJSIP_HOST": a.pjsip_host,
        "PJSIP_PORT": str(a.pjsip_port),
        "PSTN_HOST": a.pstn_host,
        "PSTN_PORT": str(a.pstn_port),
        "OFFICERS_HOST": a.officers_host,
        "OFFICERS_PORT": str(a.officers_port),
        "AGI_URL": url,
        "CELLS_CONTEXT": "cells",
        "DECIDE_AGI": f"{url}/{cv.CELL_CALL_SCRIPT}",
        "DECIDE_TIMEOUT": str(int(s.agi.session_timeout_s) + 5),
        "RING_TIMEOUT": str(a.ring_timeout_s),
        "RTP_START": str(a.rtp_start),
        "RTP_END": str(a.rtp_end),
        "STRICT_RTP": "yes",
        "ACCEPT_DIGIT": s.billing.accept_digit,
        "ACCEPT_TIMEOUT": str(s.billing.accept_timeout_s),
        "WARNING_MS": str(s.billing.warning_s * 1000),
        "WARNING_REPEAT_MS": str(s.billing.warning_repeat_s * 1000),
        "JOURNAL": journal,
        "RECORDINGS": recordings,
    } | overrides
    for key, value in found.items():
        if not value or any(not ch.isprintable() or ch == ";" for ch in value):
            # A newline or ';' would end the setting and start another: never written.
            raise RenderError(f"@@{key}@@: empty, or holds a newline, ';' or control characters")
    return found


def fill(text: str, given: Mapping[str, str], source: str) -> str:
    """``text`` with every placeholder filled; RenderError names any unknown one."""
    unknown = sorted({m for m in PLACEHOLDER.findall(text) if m not in given})
    if unknown:
        raise RenderError(f"{source}: unknown placeholder(s) {', '.join(unknown)}")
    return PLACEHOLDER.sub(lambda m: given[m.group(1)], text)


def files(given: Mapping[str, str], extra_dialplan: Iterable[Path] = ()) -> list[Rendered]:
    """Every file of the configuration: the templates, the dialplan (and ``extra_dialplan``,
    the lab's) under dialplan/, and the prompts under sounds/."""
    templates = asterisk_templates_dir()
    out = []
    for name, src in [(p.name, p) for p in sorted(templates.glob("*.conf"))] + [
        (f"dialplan/{p.name}", p) for p in [*sorted(dialplan_dir().glob("*.conf")), *extra_dialplan]
    ]:
        text = fill(src.read_text(), given, f"{src.parent.name}/{src.name}")
        mode = SECRET_FILE if name in SECRET_FILES else PRIVATE_FILE
        out.append(Rendered(name, text.encode(), mode))
    for src in sorted((templates / "sounds").glob("*")):
        out.append(Rendered(f"sounds/{src.name}", src.read_bytes(), 0o644))
    return out


def write(to: Path, rendered: Iterable[Rendered]) -> list[Path]:
    """Write the files under ``to`` (folders made 0750 when missing), each with its mode
    whatever the umask and whether it existed; returns their paths. Nothing else in ``to`` is
    touched."""
    written = []
    for f in rendered:
        path = to / f.name
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, mode=NEW_DIR)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(fd, f.mode)
            out.write(f.content)
        written.append(path)
    return written
