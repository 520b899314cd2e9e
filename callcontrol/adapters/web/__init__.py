"""The staff console: an aiohttp application mounted at /console/ on the daemon's HTTP server.

base.py is what every page uses (sessions, CSRF, rendering, the checks of who may do what);
staff_file.py the accounts; sessions.py the sessions and the login throttle; pages/ the pages;
templates/ and static/ what they are made of. Nothing is loaded from another site.
"""

from __future__ import annotations

from aiohttp import web

from callcontrol.adapters.web.base import (
    DEPS,
    HERE,
    PREFIX,
    TEMPLATES,
    ConsoleDeps,
    edge,
    templates,
)

# The page modules, each with add_routes(app); a page's author adds theirs here.
PAGES = (
    "login",
    "live",
    "cells",
    "history",
    "alerts",
    "audit",
    "recordings",
    "contacts",
    "prisoners",
)


def make_console(console: ConsoleDeps) -> web.Application:
    """The console application (mount it with ``mount``)."""
    import importlib

    app = web.Application(middlewares=[edge])
    app[DEPS] = console
    app[TEMPLATES] = templates()
    app.router.add_static("/static", HERE / "static", append_version=False)
    for page in PAGES:
        module = importlib.import_module(f"callcontrol.adapters.web.pages.{page}")
        module.add_routes(app)
    return app


async def _to_console(request: web.Request) -> web.Response:
    return web.Response(status=308, headers={"Location": PREFIX + "/"})


def mount(app: web.Application, console: ConsoleDeps) -> None:
    """Serve the console under /console/ of ``app`` (the daemon's HTTP server)."""
    app.router.add_get(PREFIX, _to_console)
    app.add_subapp(PREFIX + "/", make_console(console))
