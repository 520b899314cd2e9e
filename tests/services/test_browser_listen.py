"""Listening from the browser (services/browser_listen.py) over the supervision fakes: who may,
what is audited and when, the one-time ids and UUIDs, and the bounds (caps, expiry, a slow
page)."""

from __future__ import annotations

import asyncio

import pytest

from callcontrol.services.browser_listen import ENDED, LISTENING, BrowserListen, ListenStream
from callcontrol.services.listen import ListenAuthoriser
from callcontrol.services.supervise import (
    Actor,
    AsteriskFailed,
    AsteriskUnavailable,
    NotFound,
    Refused,
)
from tests.services.test_supervise import OFFICER, World, call

ADDRESS = "127.0.0.1:40123"
AUDITOR = Actor("Aud Itor", "auditor")
ADMIN = Actor("Ada Admin", "admin")


def browser(w: World, **kw: float) -> BrowserListen:
    return BrowserListen(w.supervisor, lambda: ADDRESS, **kw)  # type: ignore[arg-type]


def authoriser(w: World) -> ListenAuthoriser:
    return ListenAuthoriser(w.supervisor.grants, w.store, w.audit, lambda: w.channels)


def listener_of(stream: ListenStream) -> str:
    return f"AudioSocket/{ADDRESS}-{stream.uuid}"


async def test_a_listen_originates_the_daemons_audiosocket_into_the_rechecked_context() -> None:
    w = World([call(1), call(2)])
    b = browser(w)
    stream = await b.request(OFFICER, 2, "intelligence")
    [(dial, kw)] = w.control.originates
    assert dial == f"AudioSocket/{ADDRESS}/{stream.uuid}/c(slin)"
    assert kw["context"] == "cc-listen" and kw["exten"] == "s"
    listen_id = kw["variables"]["CC_LISTEN_ID"]
    # Audited under the person's name before the Originate, so before any audio.
    assert w.control.audited_before_originate == ["listen"]
    note = w.audit.notes[0]
    assert (note.actor, note.role, note.target, note.reason) == (
        "officer.smith",
        "officer",
        "call:2",
        "intelligence",
    )
    assert note.detail == f"{listener_of(stream)} listens to PJSIP/A1-01-00000002"
    # [cc-listen] accepts the id from that AudioSocket channel only, once.
    auth = authoriser(w)
    verdict = await auth.authorise(listen_id, listener_of(stream))
    assert verdict.allowed and verdict.spy_channel == "PJSIP/A1-01-00000002"
    assert not (await auth.authorise(listen_id, listener_of(stream))).allowed
    # The page's token is not the UUID, and neither appears in the other's place.
    assert stream.token != stream.uuid and stream.uuid not in stream.token


async def test_the_id_is_refused_from_any_other_channel() -> None:
    w = World([call(1)])
    stream = await browser(w).request(OFFICER, 1, "")
    listen_id = w.control.originates[0][1]["variables"]["CC_LISTEN_ID"]
    # Another AudioSocket channel (any local account could dial one in with the AMI secret).
    other = f"AudioSocket/{ADDRESS}-{'0' * 8}-0000-4000-8000-{'0' * 12}"
    verdict = await authoriser(w).authorise(listen_id, other)
    assert not verdict.allowed and "presented by" in verdict.reason
    # That refusal used the id up: the right channel, later, has no id either.
    assert not (await authoriser(w).authorise(listen_id, listener_of(stream))).allowed
    assert w.audit.actions() == ["listen", "listen_refused", "listen_refused"]


async def test_a_privileged_call_is_refused_audited_and_nothing_is_originated() -> None:
    w = World([call(1, privileged=True)])
    b = browser(w)
    with pytest.raises(Refused, match="privileged"):
        await b.request(OFFICER, 1, "curious")
    assert w.control.originates == [] and b.streams() == []
    [note] = w.audit.notes
    assert (note.action, note.actor, note.target) == ("listen_refused", "officer.smith", "call:1")


async def test_an_auditor_may_not_listen_refused_and_audited() -> None:
    w = World([call(1)])
    b = browser(w)
    with pytest.raises(Refused, match="auditor"):
        await b.request(AUDITOR, 1, "checking")
    assert w.control.originates == [] and b.streams() == []
    [note] = w.audit.notes
    assert (note.action, note.actor, note.role) == ("listen_refused", "Aud Itor", "auditor")


async def test_an_admin_may_listen() -> None:
    w = World([call(1)])
    stream = await browser(w).request(ADMIN, 1, "")
    assert stream.actor == ADMIN and len(w.control.originates) == 1


async def test_only_the_person_who_asked_may_open_the_stream_and_only_once() -> None:
    w = World([call(1)])
    b = browser(w)
    stream = await b.request(OFFICER, 1, "")
    with pytest.raises(NotFound):
        b.attach(stream.token, Actor("officer.jones", "officer"))
    with pytest.raises(NotFound):
        forged = ("y" if stream.token[0] == "x" else "x") + stream.token[1:]  # never the token
        b.attach(forged, OFFICER)
    assert b.attach(stream.token, OFFICER) is stream
    with pytest.raises(NotFound):
        b.attach(stream.token, OFFICER)


async def test_the_uuid_is_claimed_once_and_the_stream_relays_until_the_call_ends() -> None:
    w = World([call(1)])
    b = browser(w)
    stream = await b.request(OFFICER, 1, "")
    hung_up: list[bool] = []
    assert b.claim(str(stream.uuid), lambda: hung_up.append(True)) is stream
    assert b.claim(str(stream.uuid), lambda: None) is None  # used
    b.attach(stream.token, OFFICER)
    got: list[bytes] = []

    async def page() -> None:
        async for chunk in stream.chunks():
            got.append(chunk)

    reading = asyncio.create_task(page())
    stream.audio(b"\x01\x00" * 160)
    assert stream.state == LISTENING
    await asyncio.sleep(0)
    b.call_ended("1700000000.2")  # another call's channel: nothing happens
    assert stream.state == LISTENING
    b.call_ended("1700000000.1")
    await asyncio.wait_for(reading, 2)
    assert got == [b"\x01\x00" * 160]
    assert (stream.state, stream.ended, hung_up) == (ENDED, "the call ended", [True])
    assert b.streams() == []


async def test_a_slow_page_never_holds_the_audio_the_oldest_is_dropped() -> None:
    w = World([call(1)])
    stream = await browser(w).request(OFFICER, 1, "")
    for n in range(500):  # ten seconds of audio nobody reads
        stream.audio(n.to_bytes(2, "little") * 160)
    assert len(stream.frames) == 50 and stream.dropped == 450
    assert stream.frames[0] == (450).to_bytes(2, "little") * 160


async def test_a_stream_the_page_never_opens_expires_and_its_uuid_is_void() -> None:
    w = World([call(1)])
    b = browser(w, pickup_s=0.05)
    stream = await b.request(OFFICER, 1, "")
    await asyncio.sleep(0.2)
    assert stream.state == ENDED and "did not open" in stream.ended
    assert b.claim(stream.uuid, lambda: None) is None
    with pytest.raises(NotFound):
        b.attach(stream.token, OFFICER)


async def test_asterisk_that_never_connects_ends_the_listen() -> None:
    w = World([call(1)])
    b = browser(w, connect_s=0.05)
    stream = await b.request(OFFICER, 1, "")
    b.attach(stream.token, OFFICER)
    await asyncio.sleep(0.2)
    assert stream.state == ENDED and "did not connect" in stream.ended


async def test_a_flood_of_listens_is_capped_per_person_and_in_all() -> None:
    w = World([call(n) for n in range(1, 8)])
    b = browser(w, max_streams=3, max_per_person=2)
    await b.request(OFFICER, 1, "")
    await b.request(OFFICER, 2, "")
    with pytest.raises(Refused, match="at most 2"):
        await b.request(OFFICER, 3, "")
    await b.request(ADMIN, 3, "")
    with pytest.raises(AsteriskUnavailable, match="3 listens"):
        await b.request(Actor("officer.jones", "officer"), 4, "")
    assert len(w.control.originates) == 3
    b.stop()
    assert b.streams() == []
    await b.request(OFFICER, 5, "")  # room again once they ended


async def test_an_originate_that_fails_ends_the_stream_and_voids_the_ids() -> None:
    w = World([call(1)])
    b = browser(w)
    w.control.errors = {}  # the dial string is random: fail every Originate instead
    failing = AsteriskFailed("Originate failed: reason 0")

    async def fail(channel: str, **kw: object) -> object:
        raise failing

    w.control.originate = fail  # type: ignore[method-assign]
    with pytest.raises(AsteriskFailed):
        await b.request(OFFICER, 1, "")
    assert b.streams() == []
    assert w.audit.actions() == ["listen", "listen_failed"]


async def test_asterisk_hanging_up_before_any_audio_says_it_was_refused_or_ended() -> None:
    w = World([call(1)])
    b = browser(w)
    stream = await b.request(OFFICER, 1, "")
    assert b.claim(stream.uuid, lambda: None) is stream
    stream.closed("Asterisk closed the connection")
    assert stream.ended == (
        "Asterisk closed the connection before any audio (refused at the start, or the call ended)"
    )


async def test_asterisk_closing_a_heard_listen_waits_for_the_calls_hangup_to_say_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callcontrol.services import browser_listen

    monkeypatch.setattr(browser_listen, "HANGUP_GRACE_S", 0.2)
    w = World([call(1)])
    b = browser(w)
    stream = await b.request(OFFICER, 1, "")
    b.claim(stream.uuid, lambda: None)
    stream.audio(b"\x00" * 320)
    stream.closed("Asterisk closed the connection")  # ChanSpy ended: AMI's Hangup follows
    assert stream.ended == ""
    b.call_ended(stream.uniqueid)
    assert stream.ended == "the call ended"
    await asyncio.sleep(0.3)
    assert stream.ended == "the call ended"  # the grace timer changed nothing


async def test_asterisk_closing_a_heard_listen_without_a_hangup_ends_it_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callcontrol.services import browser_listen

    monkeypatch.setattr(browser_listen, "HANGUP_GRACE_S", 0.1)
    w = World([call(1)])
    b = browser(w)
    stream = await b.request(OFFICER, 1, "")
    b.claim(stream.uuid, lambda: None)
    stream.audio(b"\x00" * 320)
    stream.closed("Asterisk closed the connection")
    await asyncio.sleep(0.3)
    assert stream.ended == "Asterisk closed the connection"
    assert [c async for c in stream.chunks()] == [b"\x00" * 320]  # what came is still played
