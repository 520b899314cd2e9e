"""The kiosk's pages. Each one reads the prisoner from the session, never from the request:
there is no parameter a prisoner could change to see someone else's records."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from callcontrol.adapters.kiosk.app import SESSION, Kiosk, page, read_form
from callcontrol.adapters.kiosk.sessions import user_of
from callcontrol.adapters.web.sessions import Session
from callcontrol.services.kiosk import PinChange
from callcontrol.services.kiosk_ports import KioskRefused

log = logging.getLogger("callcontrol.kiosk")

REFUSED = (
    "Not accepted. Check your prison number and PIN and try again. "
    "After several wrong PINs, your phone and this kiosk stay locked for a while."
)
AGAIN = "Please try again."


def _session(request: web.Request) -> Session | None:
    return request.get(SESSION)


def _login(kiosk: Kiosk, request: web.Request, *, status: int = 200, **notes: str) -> web.Response:
    response = web.Response(status=status, content_type="text/html", charset="utf-8")
    token = kiosk.sessions.pre_token(request, response)
    response.text = kiosk.page_text(request, "login.html", csrf=token, notes=notes)
    return response


async def _signed_in(kiosk: Kiosk, request: web.Request) -> Session | None:
    """The session, if it is still the prisoner's to use."""
    session = _session(request)
    if session is None:
        return None
    if await kiosk.service.current(user_of(session)) is None:
        return None
    return session


def _signed_out(kiosk: Kiosk, request: web.Request, **notes: str) -> web.Response:
    request[SESSION] = None
    response = _login(kiosk, request, **notes)
    kiosk.sessions.end(request, response)
    return response


@page("GET", "/")
async def start(kiosk: Kiosk, request: web.Request) -> web.StreamResponse:
    session = await _signed_in(kiosk, request)
    if session is None:
        notes = {"info": "You were signed out."} if request.cookies.get("kiosk_session") else {}
        return _signed_out(kiosk, request, **notes)
    money = await kiosk.service.money(user_of(session))
    return kiosk.render(request, "home.html", money=money)


@page("POST", "/login")
async def login(kiosk: Kiosk, request: web.Request) -> web.StreamResponse:
    started = time.monotonic()
    request[SESSION] = None  # signing in again: whatever session there was ends
    form = await read_form(request)
    if form is None:
        return _signed_out(kiosk, request, error=AGAIN)
    address = request.remote or "-"
    user = None
    if kiosk.throttle.blocked(address):  # the same answer; no PIN looked at
        log.warning("kiosk: sign-in from %s refused unseen: too many refused there", address)
    else:
        user = await kiosk.service.sign_in(form.get("number", ""), form.get("pin", ""))
        if user is None:
            kiosk.throttle.failed(address)
    # Every answer to a sign-in takes at least login_answer_s: a database that answers a
    # known account a little more slowly than an unknown one tells nothing.
    await asyncio.sleep(max(0.0, kiosk.login_answer_s - (time.monotonic() - started)))
    if user is None:
        return _signed_out(kiosk, request, error=REFUSED)
    response = web.Response(status=303, headers={"Location": "/"})
    kiosk.sessions.end(request, response)
    kiosk.sessions.start(user, response)
    return response


@page("POST", "/logout")
async def logout(kiosk: Kiosk, request: web.Request) -> web.StreamResponse:
    await read_form(request)  # signing out needs no token: ending a session is always safe
    return _signed_out(kiosk, request, info="You are signed out.")


SignedIn = Callable[[Kiosk, web.Request, Session], Awaitable[web.StreamResponse]]


def signed_in(handler: SignedIn) -> Callable[[Kiosk, web.Request], Awaitable[web.StreamResponse]]:
    """A page for a signed-in prisoner: without a valid session, the sign-in page instead."""

    async def page_of_session(kiosk: Kiosk, request: web.Request) -> web.StreamResponse:
        session = await _signed_in(kiosk, request)
        if session is None:
            return _signed_out(kiosk, request, info="You were signed out.")
        return await handler(kiosk, request, session)

    return page_of_session


def _reading(template: str, what: str) -> SignedIn:
    async def show(kiosk: Kiosk, request: web.Request, session: Session) -> web.StreamResponse:
        items = await getattr(kiosk.service, what)(user_of(session))
        return kiosk.render(request, template, items=items, local=kiosk.local)

    return show


page("GET", "/statement")(signed_in(_reading("statement.html", "statement")))
page("GET", "/my-calls")(signed_in(_reading("calls.html", "calls")))
page("GET", "/contacts")(signed_in(_reading("contacts.html", "contacts_of")))


@page("GET", "/contacts/new")
@signed_in
async def new_contact(kiosk: Kiosk, request: web.Request, session: Session) -> web.StreamResponse:
    return kiosk.render(request, "request.html", error="", form={})


@page("POST", "/contacts/new")
@signed_in
async def ask_for_contact(
    kiosk: Kiosk, request: web.Request, session: Session
) -> web.StreamResponse:
    form = await read_form(request)
    if form is None:
        return kiosk.render(request, "request.html", status=400, error=AGAIN, form={})
    try:
        item = await kiosk.service.request_contact(
            user_of(session), form.get("number", ""), form.get("kind", ""), form.get("label", "")
        )
    except KioskRefused as e:
        return kiosk.render(request, "request.html", status=400, error=str(e), form=form)
    return kiosk.render(request, "message.html", asked=item, ended=False)


@page("GET", "/pin")
@signed_in
async def pin_form(kiosk: Kiosk, request: web.Request, session: Session) -> web.StreamResponse:
    return kiosk.render(request, "pin.html", error="")


@page("POST", "/pin")
@signed_in
async def change_pin(kiosk: Kiosk, request: web.Request, session: Session) -> web.StreamResponse:
    form = await read_form(request)
    if form is None:
        return kiosk.render(request, "pin.html", status=400, error=AGAIN)
    result = await kiosk.service.change_pin(
        user_of(session), form.get("old", ""), form.get("new", ""), form.get("again", "")
    )
    match result.outcome:
        case PinChange.CHANGED:
            return _signed_out(
                kiosk, request, info="Your PIN is changed. Use the new PIN from now on."
            )
        case PinChange.WRONG_OLD:
            return _signed_out(kiosk, request, error="The old PIN is not right. Sign in again.")
        case PinChange.ENDED:
            return _signed_out(kiosk, request, info="You were signed out.")
        case PinChange.LOCKED:
            error = "Your PIN cannot be changed now: try again later."
        case _:
            assert result.problem is not None
            error = result.problem.text(kiosk.service.pin_digits)
    return kiosk.render(request, "pin.html", status=400, error=error)


@page("GET", "/static/kiosk.css")
async def css(kiosk: Kiosk, request: web.Request) -> web.StreamResponse:
    return web.Response(body=kiosk.css, content_type="text/css", charset="utf-8")
