"""Listening in, authorised by the daemon when it starts (services/listen.py) and only to the
configured officer desks (Supervisor.listen), over the fakes of tests/services/test_supervise.py.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.listen import ListenHandler
from callcontrol.services.listen import ListenAuthoriser, ListenVerdict
from callcontrol.services.listen_grants import GRANT_TTL
from callcontrol.services.supervise import AsteriskFailed, Refused
from tests.services.test_supervise import OFFICER, World, call

DESK_CHANNEL = "PJSIP/officer-1-0000002a"


def authoriser(w: World) -> ListenAuthoriser:
    """The daemon's wiring: the API's grants, checked against the same store and channels."""
    return ListenAuthoriser(w.supervisor.grants, w.store, w.audit, lambda: w.channels)


async def listen_id(w: World, call_id: int = 1, desk: str = "officer-1") -> str:
    """Ask to listen as an officer; the id the desk's Originate carried."""
    await w.supervisor.listen(OFFICER, call_id, desk, "intelligence")
    return str(w.control.originates[-1][1]["variables"]["CC_LISTEN_ID"])


# --- only configured desks ----------------------------------------------------------------------


@pytest.mark.parametrize("desk", ["officer-2", "PJSIP/visitor-phone", "officers"])
async def test_listening_from_a_desk_not_configured_is_refused_and_audited(desk: str) -> None:
    w = World([call(1)])
    with pytest.raises(Refused, match="not a configured officer desk"):
        await w.supervisor.listen(OFFICER, 1, desk, "curious")
    assert w.control.originates == []  # the unlisted phone never rang
    [note] = w.audit.notes
    assert (note.action, note.target, note.actor, note.reason) == (
        "listen_refused",
        "call:1",
        "officer.smith",
        "curious",
    )
    assert "not an officer desk" in note.detail


# --- authorised at the moment it starts ---------------------------------------------------------


async def test_the_issued_id_lets_that_desk_listen_once_to_the_calls_channel() -> None:
    w = World([call(1), call(2)])
    lid = await listen_id(w, 2)
    auth = authoriser(w)
    verdict = await auth.authorise(lid, DESK_CHANNEL)
    assert verdict == ListenVerdict(True, "authorised", "PJSIP/A1-01-00000002", 2)
    assert w.audit.actions() == ["listen", "listen_started"]
    assert w.audit.notes[-1].detail == f"{DESK_CHANNEL} listens to PJSIP/A1-01-00000002"
    again = await auth.authorise(lid, DESK_CHANNEL)  # replayed: refused
    assert not again.allowed and "unknown, used or expired" in again.reason
    assert w.audit.actions()[-1] == "listen_refused"


@pytest.mark.parametrize("made_up", ["", "0" * 32, "f" * 31, "x" * 32, "../../etc/passwd"])
async def test_no_id_or_a_made_up_one_is_refused_and_audited(made_up: str) -> None:
    w = World([call(1)])
    await listen_id(w)
    verdict = await authoriser(w).authorise(made_up, DESK_CHANNEL)
    assert verdict == ListenVerdict(False, "no such listen id (unknown, used or expired)")
    note = w.audit.notes[-1]
    assert (note.action, note.actor, note.role, note.target) == (
        "listen_refused",
        "asterisk",
        "system",
        "listen",
    )


async def test_an_expired_id_is_refused() -> None:
    w = World([call(1)])
    lid = await listen_id(w)
    w.now += GRANT_TTL + timedelta(seconds=1)
    assert not (await authoriser(w).authorise(lid, DESK_CHANNEL)).allowed


async def test_the_id_only_serves_the_desk_it_was_issued_for() -> None:
    w = World([call(1)])
    lid = await listen_id(w)
    others = ("PJSIP/o-1-00000001", "PJSIP/officer-1-x-00000001", "Local/s@cc-listen-0;1")
    for other in others:
        verdict = await authoriser(w).authorise(lid, other)
        assert not verdict.allowed and "presented by" in verdict.reason
        lid = await listen_id(w)


async def test_a_call_that_became_privileged_meanwhile_is_never_listened_to() -> None:
    w = World([call(1)])
    lid = await listen_id(w)
    # The contact was marked legal between the request and the desk answering.
    w.store.calls[1] = dataclasses.replace(w.store.calls[1], privileged=True)
    verdict = await authoriser(w).authorise(lid, DESK_CHANNEL)
    assert not verdict.allowed and verdict.spy_channel == ""
    assert "privileged" in verdict.reason
    assert w.audit.notes[-1].action == "listen_refused"


@pytest.mark.parametrize("change", ["ended", "gone", "other channel"])
async def test_a_call_no_longer_live_on_its_channel_is_refused(change: str) -> None:
    w = World([call(1)])
    lid = await listen_id(w)
    uid = call(1).uniqueid
    if change == "ended":
        w.store.calls[1] = dataclasses.replace(w.store.calls[1], ended_at=w.now)
    elif change == "gone":
        del w.channels[uid]
    else:  # the uniqueid now names another channel: never listen to it
        w.channels[uid] = "PJSIP/B2-07-000000ff"
    assert not (await authoriser(w).authorise(lid, DESK_CHANNEL)).allowed


async def test_an_originate_that_failed_leaves_no_usable_id() -> None:
    w = World([call(1)])
    w.control.errors["PJSIP/officer-1"] = AsteriskFailed("Originate failed: reason 3")
    with pytest.raises(AsteriskFailed):
        await w.supervisor.listen(OFFICER, 1, "officer-1", "")
    lid = w.control.originates[-1][1]["variables"]["CC_LISTEN_ID"]
    assert not (await authoriser(w).authorise(lid, DESK_CHANNEL)).allowed


# --- the FastAGI route ----------------------------------------------------------------------------


class FakeAgi:
    def __init__(self, args: list[str], channel: str = DESK_CHANNEL) -> None:
        self.args, self.channel = args, channel
        self.set: dict[str, str] = {}

    async def set_variable(self, name: str, value: str) -> Any:
        self.set[name] = value


async def test_the_route_names_the_channel_only_when_the_daemon_allows() -> None:
    w = World([call(1)])
    lid = await listen_id(w)
    handler = ListenHandler(authoriser(w).authorise)
    allowed = FakeAgi([lid])
    await handler(allowed)  # type: ignore[arg-type]
    assert allowed.set == {cv.LISTEN_SPY: "PJSIP/A1-01-00000001", cv.LISTEN: "yes"}
    for args in ([lid], [], ["PJSIP/A1-01-00000001"]):
        refused = FakeAgi(args)
        await handler(refused)  # type: ignore[arg-type]
        assert refused.set == {}
