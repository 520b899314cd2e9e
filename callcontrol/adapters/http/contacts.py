"""The API's contacts (services/contacts.py, the console's and the CLI's path too):

    GET  /contacts/pending                            the staff's queue, oldest request first
    GET  /prisoners/{number}/contacts                 ?status=pending|approved|blocked
    GET  /prisoners/{number}/contact-history          newest first
    POST /prisoners/{number}/contacts/{contact}/approve   {"reason": "..."}
    POST /prisoners/{number}/contacts/{contact}/block     {"reason": "...", "kind", "label"}

Reading needs the read right (any staff role); approving and blocking the supervise right
(officer, admin), with a reason, audited under the token's person. {contact} is the number
as listed (+442079460000) or as the site's region writes it (02079460000). Lists are bounded
(``limit``, ``offset``: listing.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callcontrol.adapters.http import listing, params
from callcontrol.adapters.http.api import ApiError, _json, authorise, body
from callcontrol.adapters.http.people import SERVICES
from callcontrol.domain.roles import Right
from callcontrol.services.supervise import Actor

STATUSES = ("pending", "approved", "blocked")
KINDS = ("social", "legal")


async def pending(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, (*listing.PAGING, "kind"))
    kind = params.choice(given, "kind", KINDS)
    queue = [c for c in await request.app[SERVICES].contacts.pending() if kind in (None, c.kind)]
    return _json(listing.page(given, "contacts", queue, listing.plain))


async def of_prisoner(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, (*listing.PAGING, "status"))
    status = params.choice(given, "status", STATUSES)
    number = params.prison_number(request)
    found = await request.app[SERVICES].contacts.of(number)
    chosen = [c for c in found if status in (None, c.status)]
    return _json({"prisoner": number, **listing.page(given, "contacts", chosen, listing.plain)})


async def history(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    given = params.query(request, listing.PAGING)
    number = params.prison_number(request)
    changes = list(reversed(await request.app[SERVICES].contacts.history(number)))
    return _json({"prisoner": number, **listing.page(given, "changes", changes, listing.plain)})


async def _act(
    request: web.Request, fields: tuple[str, ...] = ("reason",)
) -> tuple[Actor, str, str, dict[str, Any]]:
    actor = authorise(request, Right.SUPERVISE)
    params.query(request, ())
    number, contact = params.prison_number(request), params.contact_number(request)
    data = await body(request, fields)
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ApiError(400, "a reason is needed (text): it is kept with the contact and audited")
    return actor, number, contact, data


async def approve(request: web.Request) -> web.Response:
    actor, number, contact, data = await _act(request)
    view = await request.app[SERVICES].contacts.approve(actor, number, contact, data["reason"])
    return _json(listing.plain(view))


async def block(request: web.Request) -> web.Response:
    actor, number, contact, data = await _act(request, ("reason", "kind", "label"))
    kind, label = data.get("kind", "social"), data.get("label", "")
    if kind not in KINDS:
        raise ApiError(400, "kind must be social or legal")
    if not isinstance(label, str):
        raise ApiError(400, "label must be text")
    contacts = request.app[SERVICES].contacts
    view = await contacts.block(actor, number, contact, data["reason"], kind=kind, label=label)
    return _json(listing.plain(view))


def add_routes(app: web.Application) -> None:
    """The routes (the services are people.py's SERVICES, set by its add_routes)."""
    one = "/prisoners/{number}/contacts/{contact}"
    app.router.add_get("/contacts/pending", pending)
    app.router.add_get("/prisoners/{number}/contacts", of_prisoner)
    app.router.add_get("/prisoners/{number}/contact-history", history)
    app.router.add_post(f"{one}/approve", approve)
    app.router.add_post(f"{one}/block", block)
