"""The OpenAPI 3.1 description of the JSON API, served at GET /openapi.json (no token).

It ships as package data, in callcontrol/data/openapi/: ``base.json`` (the document's head:
info, tags, security schemes and the shared components: Error, the common parameters and
responses), and one file per part of the API (calls.json, cells.json, ...), each holding
``paths`` and, if it needs them, ``components`` and ``tags``. They are merged when first
asked for. Adding routes means adding a file (or a path to one): two files describing the same
operation (path and method) or the same component is an error, never a silent overwrite.

Each operation that needs a token names the right it needs in ``x-callcontrol-right`` (a
domain/roles.py Right); tests/protocol/test_openapi.py checks the description against the
routes of the app the daemon builds, both ways, and against the roles at the edge.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from callcontrol.adapters.http import params
from callcontrol.resources import data_dir

log = logging.getLogger("callcontrol.http")

BASE = "base.json"
FRAGMENT_KEYS = frozenset({"paths", "components", "tags"})
METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class DescriptionError(Exception):
    """The description's files do not merge (a duplicate, an unknown key, bad JSON)."""


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DescriptionError(f"{path.name}: {e}") from None
    if not isinstance(data, dict):
        raise DescriptionError(f"{path.name}: not a JSON object")
    return data


def _merge(doc: dict[str, Any], fragment: dict[str, Any], name: str) -> None:
    unknown = set(fragment) - FRAGMENT_KEYS
    if unknown:
        allowed = ", ".join(sorted(FRAGMENT_KEYS))
        raise DescriptionError(f"{name}: unknown keys {sorted(unknown)} (only {allowed})")
    for path, item in fragment.get("paths", {}).items():
        into = doc["paths"].setdefault(path, {})
        for key, value in item.items():
            if key in into:
                raise DescriptionError(f"{name}: {key} {path} is described twice")
            into[key] = value
    for kind, entries in fragment.get("components", {}).items():
        into = doc.setdefault("components", {}).setdefault(kind, {})
        for key, value in entries.items():
            if key in into:
                raise DescriptionError(f"{name}: components/{kind}/{key} is described twice")
            into[key] = value
    names = {t["name"] for t in doc.setdefault("tags", [])}
    for tag in fragment.get("tags", []):
        if tag["name"] in names:
            raise DescriptionError(f"{name}: tag {tag['name']} is described twice")
        doc["tags"].append(tag)
        names.add(tag["name"])


def load(folder: Path | None = None) -> dict[str, Any]:
    """The whole description: base.json and every other *.json of ``folder`` merged."""
    folder = folder if folder is not None else data_dir("openapi")
    doc = _read(folder / BASE)
    doc.setdefault("paths", {})
    for path in sorted(folder.glob("*.json")):
        if path.name != BASE:
            _merge(doc, _read(path), path.name)
    doc["paths"] = dict(sorted(doc["paths"].items()))
    return doc


@cache
def _served() -> bytes:
    return json.dumps(load(), ensure_ascii=False, indent=1).encode()


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """Every described (METHOD, path) pair."""
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


async def openapi_json(request: web.Request) -> web.Response:
    params.query(request, ())
    try:
        body = _served()
    except DescriptionError:
        log.exception("the API's description (callcontrol/data/openapi) does not load")
        raise
    return web.Response(body=body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
