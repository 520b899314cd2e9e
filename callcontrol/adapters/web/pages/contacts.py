"""The console's queue of pending contacts: every number waiting for approval, across all
prisoners, oldest request first, with approve and block (a reason each, kept in the contact's
history and in the audit log under the person's name).

Right.READ sees the queue (an auditor reads it); Right.SUPERVISE acts (officer, admin). The
forms are POSTs with the session's CSRF token and a same-origin Origin (base.form). The rules
(limits, what may be approved) are ContactService's (services/contacts.py): the console, the
API and the CLI make the same act the same way.
"""

from __future__ import annotations

from aiohttp import web

from callcontrol.adapters.web.base import deps, form, render, require, see_other
from callcontrol.domain.roles import Right, may
from callcontrol.operator_services import OperatorServices
from callcontrol.services import checks
from callcontrol.services.errors import Invalid, ServiceError

ACTS = ("approve", "block")


def operator(request: web.Request) -> OperatorServices:
    services = deps(request).operator
    if services is None:
        raise web.HTTPNotFound()
    return services


async def queue(request: web.Request) -> web.Response:
    actor = require(request, Right.READ)
    pending = await operator(request).contacts.pending()
    return render(
        request, "contacts.html", title="Contacts to approve", pending=pending,
        may_act=may(actor.role, Right.SUPERVISE),
    )  # fmt: skip


async def decide(request: web.Request) -> web.Response:
    actor = require(request, Right.SUPERVISE)
    data = await form(request)
    act, prisoner, number = data.get("act", ""), data.get("prisoner", ""), data.get("number", "")
    contacts = operator(request).contacts
    try:
        if act not in ACTS:
            raise Invalid("choose approve or block")
        reason = checks.reason(data.get("reason", ""), required=True)
        if act == "approve":
            done = await contacts.approve(actor, prisoner, number, reason)
        else:
            done = await contacts.block(actor, prisoner, number, reason)
    except ServiceError as e:  # not pending any more, a limit reached, no reason given, ...
        return see_other(request, "/contacts", f"Not done: {e}")
    verb = "Approved" if act == "approve" else "Blocked"
    return see_other(
        request, "/contacts", f"{verb} {done.number} for {done.prison_number}: {reason}"
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/contacts", queue)
    app.router.add_post("/contacts/decide", decide)
