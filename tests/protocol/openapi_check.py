"""Checking the API against its OpenAPI description (callcontrol/data/openapi): the routes of an
aiohttp application, and real answers against the described schemas (jsonschema, draft
2020-12 as OpenAPI 3.1 uses it). For any test of an API route: ``Described().check(response,
body)`` after the request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from callcontrol.adapters.http import openapi

URI = "urn:callcontrol:openapi"
# Where the daemon serves what is not the JSON API: the staff console's HTML pages (its
# sub-application, and the redirect from /console to /console/).
NOT_THE_API = ("/console",)


def _api(path: str) -> bool:
    return not any(path == p or path.startswith(p + "/") for p in NOT_THE_API)


def routes(app: web.Application) -> set[tuple[str, str]]:
    """Every (METHOD, path template) of the JSON API the application routes, HEAD (aiohttp's,
    with each GET) left out, and sub-applications' routes (aiohttp gives them their prefix)."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        path = resource.canonical
        if not _api(path):
            continue
        if isinstance(resource, web.PrefixedSubAppResource):
            found |= routes(resource._app)
            continue
        for route in resource:
            if route.method != "HEAD":
                found.add((route.method, path))
    return found


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Described:
    """The description, and a check of answers against it."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = doc if doc is not None else openapi.load()
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(URI, resource)
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, method: str, template: str) -> dict[str, Any]:
        try:
            return dict(self.doc["paths"][template][method.lower()])
        except KeyError:
            raise AssertionError(f"{method} {template} is not described") from None

    def _response(self, method: str, template: str, status: int) -> tuple[dict[str, Any], str]:
        responses = self.operation(method, template)["responses"]
        if str(status) not in responses:
            raise AssertionError(f"{method} {template} answers {status}, which is not described")
        response = responses[str(status)]
        where = _pointer("paths", template, method.lower(), "responses", str(status))
        if "$ref" in response:
            where = response["$ref"].removeprefix("#")
            response = self.doc
            for part in where.strip("/").split("/"):
                response = response[part.replace("~1", "/").replace("~0", "~")]
        return response, where

    def validate(
        self, method: str, template: str, status: int, content_type: str, body: Any
    ) -> None:
        """Raise unless ``body`` is what the description says this answer holds."""
        response, where = self._response(method, template, status)
        content = response.get("content", {})
        assert content_type in content, (
            f"{method} {template} {status} answers {content_type}, described: {sorted(content)}"
        )
        schema = {"$ref": URI + "#" + where + _pointer("content", content_type, "schema")}
        validator = Draft202012Validator(
            schema, registry=self.registry, format_checker=FormatChecker()
        )
        validator.validate(body)
        self.checked.add((method.upper(), template, status))

    async def check(self, response: Any, method: str, template: str) -> Any:
        """Validate an aiohttp client response; returns its body: JSON decoded, text for
        text/*, else bytes (audio, ...: only its status and content type are checked)."""
        kind = response.content_type
        if kind == "application/json":
            body: Any = await response.json()
        elif kind.startswith("text/"):
            body = await response.text()
        else:
            content = self._response(method, template, response.status)[0].get("content", {})
            assert kind in content, f"{method} {template} answers {kind}: {sorted(content)}"
            self.checked.add((method.upper(), template, response.status))
            return await response.read()
        self.validate(method, template, response.status, kind, body)
        return body


async def daemon_app(settings: Any, sessions: Any, engine: Any) -> web.Application:
    """The HTTP application exactly as the daemon wires it (app.py's build_http_server, then
    daemon_ops' start_operations adding /ready and /metrics), over parts that never connect."""
    from callcontrol.adapters.ami.channels import ChannelTracker
    from callcontrol.adapters.ami.session import AmiSession
    from callcontrol.adapters.db.journal_store import SqlJournalStore
    from callcontrol.adapters.journal_file import JournalFile
    from callcontrol.app import build_http_server
    from callcontrol.config import with_overrides
    from callcontrol.daemon_ops import start_operations
    from callcontrol.services.journal import JournalFollower
    from callcontrol.services.listen_grants import ListenGrants
    from callcontrol.wiring import utcnow

    if not settings.recording.spool_dir:  # the console (on by default) wants it
        spool = Path(settings.base_dir) / "spool"
        spool.mkdir(exist_ok=True)
        settings = with_overrides(settings, recording={"spool_dir": str(spool)})
    ami = AmiSession("127.0.0.1", 1, "nobody", "not-a-secret", reconnect_s=60)
    journal_file = JournalFile(Path(settings.base_dir) / "journal")
    journal = JournalFollower(journal_file, SqlJournalStore(sessions))
    tracker, grants = ChannelTracker(), ListenGrants(utcnow)
    http = build_http_server(settings, sessions, ami, tracker, journal, grants)
    parts = SimpleNamespace(
        listening=False, active_sessions=0, port=0, in_progress=0, failures=0, store_failures=0,
        on_decided=[], on_settled=[],
    )  # fmt: skip
    ops = start_operations(
        settings, engine=engine, sessions=sessions, agi=parts, ami=ami, http=http,  # type: ignore[arg-type]
        auth=parts, settler=parts, worker_status=parts, stop=asyncio.Event(),  # type: ignore[arg-type]
    )  # fmt: skip
    for task in ops.tasks:
        task.cancel()
    await asyncio.gather(*ops.tasks, return_exceptions=True)
    return http.app
