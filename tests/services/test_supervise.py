"""Supervision use cases (services/supervise.py) over hand-written fakes of their ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callcontrol.adapters.ami.session import AmiActionLost, AmiError, AmiUnavailable
from callcontrol.services.supervise import (
    Actor,
    AsteriskActionLost,
    AsteriskFailed,
    AsteriskUnavailable,
    AuditNote,
    CallControlGuard,
    CallRecord,
    ChannelGone,
    Invalid,
    NotFound,
    Refused,
    Supervisor,
)
from callcontrol.services.views import CellView, PrisonerView

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
OFFICER = Actor("officer.smith", "officer")
ADMIN = Actor("Ada Admin", "admin")
OFFICER_DESKS = ("officer-1", "o-1")


def call(call_id: int, cell: str = "A1-01", prisoner: str = "A1234BC", **kw: Any) -> CallRecord:
    values: dict[str, Any] = dict(
        call_id=call_id,
        cell=cell,
        prison_number=prisoner,
        prisoner_name=f"Prisoner {prisoner}",
        number="+442079460000",
        privileged=False,
        channel=f"PJSIP/{cell}-{call_id:08x}",
        uniqueid=f"1700000000.{call_id}",
        started_at=T0,
        max_seconds=600,
    )
    return CallRecord(**(values | kw))


class FakeAudit:
    def __init__(self) -> None:
        self.notes: list[AuditNote] = []

    async def record(self, note: AuditNote) -> None:
        self.notes.append(note)

    async def entries(self, *, limit: int, action: str | None) -> Sequence[Mapping[str, Any]]:
        found = [vars(n) for n in reversed(self.notes) if action in (None, n.action)]
        return found[:limit]

    def actions(self) -> list[str]:
        return [n.action for n in self.notes]


class _Tx:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def audit(self, note: AuditNote) -> None:
        await self.store.audit.record(note)


class FakeStore:
    def __init__(self, audit: FakeAudit, calls: Sequence[CallRecord] = ()) -> None:
        self.audit = audit
        self.calls = {c.call_id: c for c in calls}
        self.cells = {c.cell: (True, "") for c in calls} | {"A1-01": (True, "")}
        self.prisoners = {c.prison_number: (True, "") for c in calls}
        self.handsets = set(self.cells)
        self.db_up = True

    async def open_calls(
        self, *, cell: str | None = None, prison_number: str | None = None
    ) -> Sequence[CallRecord]:
        if cell is not None and cell not in self.cells:
            raise NotFound(f"no cell named {cell!r}")
        if prison_number is not None and prison_number not in self.prisoners:
            raise NotFound(f"no prisoner with prison number {prison_number!r}")
        return [
            c
            for c in sorted(self.calls.values(), key=lambda c: c.call_id)
            if c.ended_at is None
            and cell in (None, c.cell)
            and prison_number in (None, c.prison_number)
        ]

    async def call(self, call_id: int) -> CallRecord | None:
        return self.calls.get(call_id)

    # The operator's store's transaction, as much of it as CellService and PrisonerService
    # use to disable, enable, suspend and reinstate (the audit note in the same "transaction").

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        yield _Tx(self)

    async def cell(self, name: str) -> CellView | None:
        if name not in self.cells:
            return None
        enabled, reason = self.cells[name]
        return CellView(name, "", name, enabled, reason)

    async def set_cell_enabled(self, name: str, enabled: bool, reason: str) -> None:
        self.cells[name] = (enabled, reason)

    async def prisoner(self, prison_number: str) -> PrisonerView | None:
        if prison_number not in self.prisoners:
            return None
        active, reason = self.prisoners[prison_number]
        return PrisonerView(prison_number, "", None, active, reason)

    async def update_prisoner(self, prison_number: str, **changes: Any) -> None:
        self.prisoners[prison_number] = (changes["active"], changes["suspended_reason"])

    async def is_handset(self, endpoint: str) -> bool:
        return endpoint in self.handsets

    async def healthy(self) -> bool:
        return self.db_up


class FakeControl:
    """Records every action; ``errors`` maps a channel to the exception its action raises."""

    def __init__(self, audit: FakeAudit | None = None) -> None:
        self.connected = True
        self.hangups: list[tuple[str, int]] = []
        self.originates: list[tuple[str, dict[str, Any]]] = []
        self.errors: dict[str, Exception] = {}
        self.audit = audit
        self.audited_before_originate: list[str] = []

    async def hangup(self, channel: str, cause: int = 16) -> Any:
        self.hangups.append((channel, cause))
        if channel in self.errors:
            raise self.errors[channel]
        return {"Response": "Success"}

    async def originate(self, channel: str, **kwargs: Any) -> Any:
        self.originates.append((channel, kwargs))
        if self.audit is not None:
            self.audited_before_originate = self.audit.actions()
        if channel in self.errors:
            raise self.errors[channel]
        return {"Response": "Success"}


class World:
    """A supervisor over fakes; Asterisk has the channels of the calls given as live."""

    def __init__(self, calls: Sequence[CallRecord], live: Sequence[int] | None = None) -> None:
        self.audit = FakeAudit()
        self.store = FakeStore(self.audit, calls)
        self.control = FakeControl(self.audit)
        live_ids = [c.call_id for c in calls] if live is None else live
        self.channels = {
            c.uniqueid: c.channel for c in calls if c.call_id in live_ids and c.ended_at is None
        }
        self.accepted: dict[str, datetime] = {}
        self.now = T0 + timedelta(minutes=2)
        self.supervisor = Supervisor(
            self.store,
            self.control,
            self.audit,
            clock=lambda: self.now,
            channels=lambda: self.channels,
            acceptances=self._acceptances,
            officer_desks=OFFICER_DESKS,
        )

    async def _acceptances(self) -> Mapping[str, datetime]:
        return self.accepted


# --- cut ---------------------------------------------------------------------------------------


async def test_cut_hangs_up_the_callers_channel_and_audits() -> None:
    w = World([call(1), call(2, cell="B2-07", prisoner="B5678CD")])
    channel = await w.supervisor.cut(OFFICER, 2, "abusive language")
    assert channel == "PJSIP/B2-07-00000002"
    assert w.control.hangups == [("PJSIP/B2-07-00000002", 16)]
    [note] = w.audit.notes
    assert note == AuditNote(
        "officer.smith",
        "officer",
        "cut",
        "call:2",
        "abusive language",
        "hung up PJSIP/B2-07-00000002",
    )


async def test_cut_uses_the_channel_name_asterisk_has_now() -> None:
    w = World([call(1)])
    w.channels[call(1).uniqueid] = "PJSIP/A1-01-0000abcd"
    assert await w.supervisor.cut(OFFICER, 1, "r") == "PJSIP/A1-01-0000abcd"


@pytest.mark.parametrize(
    ("call_id", "error", "message"),
    [
        (9, NotFound, "no call 9"),
        (2, NotFound, "call 2 has ended"),
        (3, NotFound, "no longer has its channel"),
    ],
)
async def test_cut_of_no_live_call_is_not_found(call_id: int, error: type, message: str) -> None:
    w = World([call(1), call(2, ended_at=T0), call(3)], live=[1])
    with pytest.raises(error, match=message):
        await w.supervisor.cut(OFFICER, call_id, "r")
    assert w.control.hangups == [] and w.audit.notes == []


async def test_cut_needs_a_reason() -> None:
    w = World([call(1)])
    for reason in (None, "", "   "):
        with pytest.raises(Invalid, match="reason is required"):
            await w.supervisor.cut(OFFICER, 1, reason)
    with pytest.raises(Invalid, match="control characters"):
        await w.supervisor.cut(OFFICER, 1, "bad\x00reason")
    assert w.control.hangups == []


async def test_cut_without_ami_sends_nothing() -> None:
    w = World([call(1)])
    w.control.connected = False
    with pytest.raises(AsteriskUnavailable):
        await w.supervisor.cut(OFFICER, 1, "r")
    assert w.control.hangups == [] and w.audit.notes == []


async def test_a_lost_hangup_is_not_retried_and_is_audited_as_unknown() -> None:
    w = World([call(1)])
    w.control.errors[call(1).channel] = AsteriskActionLost("AMI connection lost before Hangup")
    with pytest.raises(AsteriskActionLost, match="not resent"):
        await w.supervisor.cut(OFFICER, 1, "r")
    assert len(w.control.hangups) == 1
    [note] = w.audit.notes
    assert note.action == "cut" and "outcome unknown, not resent" in note.detail


async def test_a_channel_gone_meanwhile_is_not_found() -> None:
    w = World([call(1)])
    w.control.errors[call(1).channel] = ChannelGone("Hangup failed: No such channel")
    with pytest.raises(NotFound, match="call 1 has ended"):
        await w.supervisor.cut(OFFICER, 1, "r")


async def test_a_refused_hangup_is_audited_and_reported() -> None:
    w = World([call(1)])
    w.control.errors[call(1).channel] = AsteriskFailed("Hangup failed: Permission denied")
    with pytest.raises(AsteriskFailed, match="Permission denied"):
        await w.supervisor.cut(OFFICER, 1, "r")
    assert "failed" in w.audit.notes[0].detail


# --- the AMI session as a CallControl port -----------------------------------------------------


class FakeAmi:
    """What CallControlGuard needs of AmiSession; raises ``error`` once per action, counted."""

    def __init__(self, error: Exception | None = None) -> None:
        self.connected = True
        self.error = error
        self.sent: list[tuple[str, str]] = []

    async def hangup(self, channel: str, cause: int = 16) -> Any:
        self.sent.append(("Hangup", channel))
        if self.error is not None:
            raise self.error
        return {}

    async def originate(self, channel: str, **kwargs: Any) -> Any:
        self.sent.append(("Originate", channel))
        if self.error is not None:
            raise self.error
        return {}


def guarded(ami: FakeAmi) -> CallControlGuard:
    return CallControlGuard(
        ami, unavailable=(AmiUnavailable,), lost=(AmiActionLost,), failed=(AmiError,)
    )


@pytest.mark.parametrize(
    ("raised", "seen"),
    [
        (AmiActionLost("AMI connection lost before Hangup"), AsteriskActionLost),
        (AmiUnavailable("AMI not connected; Hangup not sent"), AsteriskUnavailable),
        (AmiError("Hangup failed: No such channel"), ChannelGone),
        (AmiError("Hangup failed: Permission denied"), AsteriskFailed),
    ],
)
async def test_ami_errors_become_the_services_own(raised: Exception, seen: type) -> None:
    ami = FakeAmi(raised)
    with pytest.raises(seen):
        await guarded(ami).hangup("PJSIP/A1-01-00000001")
    assert ami.sent == [("Hangup", "PJSIP/A1-01-00000001")]  # once: never resent


async def test_amiactionlost_through_the_guard_is_sent_once_and_never_resent() -> None:
    ami = FakeAmi(AmiActionLost("not resent after reconnect"))
    w = World([call(1), call(2)])
    supervisor = replace_control(w, guarded(ami))
    with pytest.raises(AsteriskActionLost):
        await supervisor.cut(OFFICER, 1, "r")
    sweep = await supervisor.disable_cell(OFFICER, "A1-01", "handset smashed")
    assert ami.sent == [("Hangup", "PJSIP/A1-01-00000001")] + [
        ("Hangup", "PJSIP/A1-01-00000001"),
        ("Hangup", "PJSIP/A1-01-00000002"),
    ]  # one per action asked for, none repeated
    assert sweep.cut == [] and [i for i, _ in sweep.not_cut] == [1, 2]
    assert all("not resent" in why for _, why in sweep.not_cut)


def replace_control(w: World, control: Any) -> Supervisor:
    s = w.supervisor
    return Supervisor(
        s.store, control, s.audit, clock=s.clock, channels=s.channels, acceptances=s.acceptances,
        officer_desks=OFFICER_DESKS,
    )  # fmt: skip


# --- listen ------------------------------------------------------------------------------------


async def test_listen_to_a_privileged_call_is_refused_and_audited() -> None:
    w = World([call(1, privileged=True)])
    with pytest.raises(Refused, match="privileged call: never monitored"):
        await w.supervisor.listen(OFFICER, 1, "PJSIP/officer-1", "suspicion")
    assert w.control.originates == []
    [note] = w.audit.notes
    assert (note.action, note.target, note.reason) == ("listen_refused", "call:1", "suspicion")
    assert "privileged call: never monitored" in note.detail and "PJSIP/officer-1" in note.detail


@pytest.mark.parametrize("endpoint", ["PJSIP/officer-1", "officer-1", "pjsip/officer-1"])
async def test_listen_originates_to_the_officer_into_cc_listen(endpoint: str) -> None:
    w = World([call(1), call(2)])
    assert await w.supervisor.listen(OFFICER, 2, endpoint, "") == "PJSIP/officer-1"
    [(channel, kwargs)] = w.control.originates
    assert channel == "PJSIP/officer-1"
    assert kwargs["context"] == "cc-listen" and kwargs["exten"] == "s"
    listen_id = kwargs["variables"].pop("CC_LISTEN_ID")
    assert len(listen_id) == 32 and int(listen_id, 16) >= 0  # one-time: services/listen.py
    assert kwargs["variables"] == {
        "CC_SPY_CHANNEL": "PJSIP/A1-01-00000002",
        "CC_LISTEN_CALL": "2",
    }
    assert w.control.hangups == []
    # Audited before the officer's phone rang.
    assert w.control.audited_before_originate == ["listen"]
    assert w.audit.notes[0].detail == "PJSIP/officer-1 listens to PJSIP/A1-01-00000002"


@pytest.mark.parametrize(
    "endpoint",
    ["", None, "PJSIP/0207@pstn", "Local/1234@cells", "PJSIP/a/b", "officer 1", "SIP/officer"],
)
async def test_listen_takes_only_an_endpoint_name(endpoint: Any) -> None:
    w = World([call(1)])
    with pytest.raises(Invalid):
        await w.supervisor.listen(OFFICER, 1, endpoint, "")
    assert w.control.originates == [] and w.audit.notes == []


@pytest.mark.parametrize("endpoint", ["pstn", "A1-01", "PJSIP/B2-07"])
async def test_listen_never_rings_a_trunk_or_a_cell_handset(endpoint: str) -> None:
    w = World([call(1), call(2, cell="B2-07", prisoner="B5678CD")])
    with pytest.raises(Invalid, match="not an officer's endpoint"):
        await w.supervisor.listen(OFFICER, 1, endpoint, "")
    assert w.control.originates == []


async def test_listen_failures_are_audited_and_not_retried() -> None:
    w = World([call(1)])
    w.control.errors["PJSIP/officer-1"] = AsteriskActionLost("no reply to Originate within 35s")
    with pytest.raises(AsteriskActionLost, match="not resent"):
        await w.supervisor.listen(OFFICER, 1, "officer-1", "")
    w.control.errors["PJSIP/officer-1"] = AsteriskFailed("Originate failed: reason 3")
    with pytest.raises(AsteriskFailed, match="could not connect PJSIP/officer-1"):
        await w.supervisor.listen(OFFICER, 1, "officer-1", "")
    assert len(w.control.originates) == 2
    assert w.audit.actions() == ["listen", "listen_failed", "listen", "listen_failed"]


# --- cells and prisoners -----------------------------------------------------------------------


async def test_disable_cell_cuts_every_live_call_of_that_cell() -> None:
    calls = [
        call(1),
        call(2, prisoner="C9999ZZ"),
        call(3, cell="B2-07", prisoner="B5678CD"),
        call(4, prisoner="D1111AA"),  # open in the database, gone from Asterisk
        call(5, prisoner="E2222BB", ended_at=T0),
    ]
    w = World(calls, live=[1, 2, 3])
    sweep = await w.supervisor.disable_cell(OFFICER, "A1-01", "handset smashed")
    assert w.store.cells["A1-01"] == (False, "handset smashed")
    assert sweep.cut == [1, 2] and sweep.not_cut == []
    assert [h for h, _ in w.control.hangups] == ["PJSIP/A1-01-00000001", "PJSIP/A1-01-00000002"]
    assert [(n.action, n.target) for n in w.audit.notes] == [
        ("disable", "cell:A1-01"),
        ("cut", "call:1"),
        ("cut", "call:2"),
    ]
    assert all(n.reason == "handset smashed" for n in w.audit.notes)


async def test_disable_cell_without_ami_disables_and_reports_calls_not_cut() -> None:
    w = World([call(1)])
    w.control.connected = False
    sweep = await w.supervisor.disable_cell(OFFICER, "A1-01", "")
    assert w.store.cells["A1-01"] == (False, "")
    assert sweep.cut == [] and sweep.not_cut == [(1, sweep.not_cut[0][1])]
    assert "AMI not connected" in sweep.not_cut[0][1]
    assert w.control.hangups == []


async def test_disable_unknown_cell_is_not_found() -> None:
    w = World([call(1)])
    with pytest.raises(NotFound):
        await w.supervisor.disable_cell(OFFICER, "Z9-99", "")
    with pytest.raises(NotFound):
        await w.supervisor.cut_cell_calls(OFFICER, "Z9-99", "")
    assert w.audit.notes == []


async def test_suspend_prisoner_cuts_their_live_call_and_reinstate_audits() -> None:
    w = World([call(1), call(2, cell="B2-07", prisoner="B5678CD")])
    sweep = await w.supervisor.suspend_prisoner(OFFICER, "B5678CD", "adjudication")
    assert sweep.cut == [2] and w.store.prisoners["B5678CD"] == (False, "adjudication")
    await w.supervisor.reinstate_prisoner(ADMIN, "B5678CD")
    assert w.store.prisoners["B5678CD"] == (True, "")
    assert w.audit.actions() == ["suspend", "cut", "resume"]


async def test_an_officer_cannot_undo_a_suspension_or_a_disabled_cell() -> None:
    """Officers cut calls (disable, suspend); only an admin lets calls through again."""
    w = World([call(1), call(2, cell="B2-07", prisoner="B5678CD")])
    await w.supervisor.disable_cell(ADMIN, "A1-01", "handset smashed")
    await w.supervisor.suspend_prisoner(ADMIN, "B5678CD", "adjudication")
    before = w.audit.actions()
    with pytest.raises(Refused, match="admin"):
        await w.supervisor.enable_cell(OFFICER, "A1-01", "fixed")
    with pytest.raises(Refused, match="admin"):
        await w.supervisor.reinstate_prisoner(OFFICER, "B5678CD", "served")
    assert w.store.cells["A1-01"] == (False, "handset smashed")
    assert w.store.prisoners["B5678CD"] == (False, "adjudication")
    assert w.audit.actions() == before  # nothing done, nothing audited as done
    await w.supervisor.enable_cell(ADMIN, "A1-01", "fixed")
    await w.supervisor.reinstate_prisoner(ADMIN, "B5678CD", "served")
    assert w.store.cells["A1-01"] == (True, "")
    assert w.store.prisoners["B5678CD"] == (True, "")


async def test_cut_calls_of_a_cell_without_disabling_it() -> None:
    w = World([call(1)])
    sweep = await w.supervisor.cut_cell_calls(OFFICER, "A1-01", "")
    assert sweep.cut == [1] and w.store.cells["A1-01"] == (True, "")
    assert w.audit.notes[0].reason == "calls of cell A1-01 cut"


# --- the live view, health and the audit log ---------------------------------------------------


async def test_live_calls_are_those_asterisk_still_has_with_time_left() -> None:
    calls = [
        call(1, answered_at=T0 + timedelta(seconds=30)),  # accepted, settled fields known
        call(2, prisoner="B5678CD"),  # accepted according to the journal
        call(3, prisoner="C9999ZZ", privileged=True, max_seconds=None),  # ringing
        call(4, prisoner="D1111AA"),  # gone from Asterisk
    ]
    w = World(calls, live=[1, 2, 3])
    w.accepted[call(2).uniqueid] = T0 + timedelta(seconds=100)
    w.now = T0 + timedelta(seconds=130)
    view = await w.supervisor.live_calls()
    assert view.asterisk_connected is True
    assert [lc.call.call_id for lc in view.calls] == [1, 2, 3]
    one, two, three = view.calls
    assert (one.seconds_left, two.seconds_left, three.seconds_left) == (500, 570, None)
    assert two.answered_at == T0 + timedelta(seconds=100) and three.answered_at is None
    assert (one.recorded, three.recorded) == (True, False)
    assert three.call.privileged is True and one.channel == "PJSIP/A1-01-00000001"


async def test_seconds_left_never_goes_below_zero() -> None:
    w = World([call(1, answered_at=T0, max_seconds=60)])
    w.now = T0 + timedelta(seconds=75)
    [lc] = (await w.supervisor.live_calls()).calls
    assert lc.seconds_left == 0


async def test_health_and_audit_entries() -> None:
    w = World([call(1)])
    assert (await w.supervisor.health()).ami is True
    w.control.connected, w.store.db_up = False, False
    health = await w.supervisor.health()
    assert (health.ami, health.db) == (False, False)
    await w.supervisor.cut_cell_calls(OFFICER, "A1-01", "")
    with pytest.raises(Invalid):
        await w.supervisor.audit_entries(limit=0)
    assert await w.supervisor.audit_entries(limit=10, action="cut") == []
