"""The lab's settings file: the operator's settings plus where the lab's Asterisk keeps things.

The product has no lab defaults: the daemon and the CLI need the journal file, the recordings
spool, the cells' endpoints file and the way to reach Asterisk's CLI set explicitly. The lab
knows them (they are inside its root), so it writes them, with ``[lab] enabled``, into a
settings file of its own: the given settings file's contents (if any) with the lab's values
merged over them. Every lab tool (the demo, the tests, `callcontrol-lab up`) hands that file to
`callcontrol` and `callcontrol-sim` with ``--config``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from callcontrol import private_files
from callcontrol.config import ConfigError


def _value(value: Any) -> str:
    """One TOML value: text, numbers, booleans, lists of them, tables of those (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} into a settings file")


def dumps(data: dict[str, Any]) -> str:
    """``data`` (top-level keys, then one table per section) as TOML text."""
    top = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    lines = ["# Written by the callcontrol lab: its own values override the given settings.", *top]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def merged(source: Path | None, lab_values: dict[str, dict[str, Any]], base_dir: Path) -> str:
    """The settings file ``source`` (None: none) with ``lab_values`` over it, as TOML text.
    Relative paths keep meaning what they meant: ``base_dir`` is written unless given."""
    data: dict[str, Any] = {}
    if source is not None:
        try:
            data = tomllib.loads(source.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"settings file {source}: {e}") from None
    data.setdefault("base_dir", str(base_dir))
    for section, values in lab_values.items():
        data.setdefault(section, {}).update(values)
    return dumps(data)


def write(dest: Path, text: str) -> Path:
    """Write the lab's settings file (mode 0600: it may hold the given file's secrets)."""
    private_files.private_dir(dest.parent)
    private_files.write_file(dest, text)
    return dest
