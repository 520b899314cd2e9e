"""The files that ship inside the package: Alembic migrations, the Asterisk configuration
templates and sounds, and the cells' dialplan. Read through ``importlib.resources``, so an
installed wheel finds them in site-packages and nothing reads a repository checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_dir(*parts: str) -> Path:
    """A directory (or file) under ``callcontrol/data``, as a filesystem path.

    The package is installed as plain files (a wheel or an editable install), never zipped,
    so the path is usable as it is by Alembic and by file copies."""
    path = Path(str(files("callcontrol").joinpath("data", *parts)))
    if not path.exists():
        raise FileNotFoundError(f"package data missing: {path} (is callcontrol installed whole?)")
    return path


def migrations_dir() -> Path:
    return data_dir("migrations")


def asterisk_templates_dir() -> Path:
    return data_dir("asterisk")


def dialplan_dir() -> Path:
    return data_dir("dialplan")
