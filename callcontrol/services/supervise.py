"""Supervision: what officers do to live calls (see them, cut them, listen in) and to cells and
prisoners (take the phone away, which also cuts their live calls). Every act is audited.

The use cases take their ports as arguments: a store (calls, cells, prisoners), a call-control
port (Hangup and Originate; AMI in the daemon), an audit log, the channels Asterisk has, and a
clock; and the operator's CellService and PrisonerService, which disable, enable, suspend and
reinstate (the same act whichever edge asks: the console, the API or the CLI). Errors are
services/errors.py's one hierarchy (NotFound, Refused, ...); the HTTP adapter maps them to
status codes at its edge. An action sent to Asterisk whose reply never came
(AsteriskActionLost) is never resent: it may have run. The officer looks and retries by hand.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from callcontrol.services import checks
from callcontrol.services.actors import Actor, AuditNote
from callcontrol.services.cells import CellService
from callcontrol.services.errors import (
    AsteriskActionLost,
    AsteriskFailed,
    AsteriskUnavailable,
    ChannelGone,
    Invalid,
    NotFound,
    Refused,
    ServiceError,
)
from callcontrol.services.listen_grants import ListenGrants, TooManyWaiting
from callcontrol.services.prisoners import PrisonerService

log = logging.getLogger("callcontrol.supervise")

# The dialplan context an officer's phone is sent into to listen: ChanSpy on CC_SPY_CHANNEL.
LISTEN_CONTEXT = "cc-listen"
LISTEN_EXTEN = "s"
SPY_CHANNEL_VAR = "CC_SPY_CHANNEL"  # for the log line only: the daemon names the spied channel
LISTEN_CALL_VAR = "CC_LISTEN_CALL"
# The one-time id [cc-listen] shows the daemon (services/listen.py) before any ChanSpy.
LISTEN_ID_VAR = "CC_LISTEN_ID"
LISTEN_RING_MS = 30000  # how long the officer's phone rings before the request gives up
# A listen from the console's page (services/browser_listen.py): the desk named in its grant,
# and how long Asterisk may take to connect to the daemon's AudioSocket (it answers at once).
BROWSER_DESK = "browser"
BROWSER_CONNECT_MS = 5000
CUT_CAUSE = 16  # Q.850 normal clearing, on the caller's leg; the bridge ends the other leg
MAX_REASON = checks.MAX_REASON
MAX_AUDIT_LIMIT = 1000
PRIVILEGED_REFUSAL = "privileged call: never monitored"
# An officer's endpoint: a PJSIP endpoint name, never a dial string (no '@', no '/').
ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Audit actions (the words of adapters/db/audit.py where it has one).
CUT, LISTEN, LISTEN_REFUSED, LISTEN_FAILED = "cut", "listen", "listen_refused", "listen_failed"
DISABLE, ENABLE = "disable", "enable"  # a cell
SUSPEND, RESUME = "suspend", "resume"  # a prisoner


# --- errors: services/errors.py's, one hierarchy; the HTTP edge maps them -------------------

# SuperviseError is the services' ServiceError: every service error (NotFound, Invalid,
# Refused, Asterisk*) is one, so the API maps the operator's services' errors too.
SuperviseError = ServiceError

# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecord:
    """A call as the store has it, with the time limit its reservation fixed."""

    call_id: int
    cell: str
    prison_number: str
    prisoner_name: str
    number: str
    privileged: bool
    channel: str  # the caller's (handset's) channel
    uniqueid: str
    started_at: datetime
    answered_at: datetime | None = None
    max_seconds: int | None = None  # None: no reservation
    ended_at: datetime | None = None


@dataclass(frozen=True)
class LiveCall:
    call: CallRecord
    answered_at: datetime | None  # from the call, else the journal's acceptance
    seconds_left: int | None  # None until the called party accepts
    recorded: bool
    channel: str  # as Asterisk has it now


@dataclass(frozen=True)
class LiveView:
    calls: list[LiveCall]
    asterisk_connected: bool  # False: the list is what was known when the AMI was lost


@dataclass(frozen=True)
class Sweep:
    """What cutting every live call of a cell or prisoner did."""

    cut: list[int] = field(default_factory=list)
    not_cut: list[tuple[int, str]] = field(default_factory=list)  # call id, why


@dataclass(frozen=True)
class Health:
    ami: bool
    db: bool


# --- ports -----------------------------------------------------------------------------------


class SuperviseStore(Protocol):
    async def open_calls(
        self, *, cell: str | None = None, prison_number: str | None = None
    ) -> Sequence[CallRecord]:
        """Calls not ended (ended_at IS NULL), oldest first, optionally of one cell/prisoner
        (NotFound if there is no such cell or prisoner)."""
        ...

    async def call(self, call_id: int) -> CallRecord | None: ...

    async def is_handset(self, endpoint: str) -> bool:
        """Is this SIP endpoint a cell's handset?"""
        ...

    async def healthy(self) -> bool: ...


class CallControl(Protocol):
    """Hangup and Originate (AmiSession's arguments), raising this module's Asterisk* errors
    and never resending."""

    @property
    def connected(self) -> bool: ...

    async def hangup(self, channel: str, cause: int = CUT_CAUSE) -> Any: ...

    async def originate(self, channel: str, **kwargs: Any) -> Any: ...


class AuditLog(Protocol):
    async def record(self, note: AuditNote) -> None: ...

    async def entries(self, *, limit: int, action: str | None) -> Sequence[Mapping[str, Any]]: ...


# The channels Asterisk has: uniqueid -> channel name (the AMI channel tracker in the daemon).
LiveChannels = Callable[[], Mapping[str, str]]
# When the called party accepted each call, by caller uniqueid (the journal in the daemon).
Acceptances = Callable[[], Awaitable[Mapping[str, datetime]]]


class CallControlGuard:
    """Make a session with ``connected``, ``hangup`` and ``originate`` (AmiSession) a
    CallControl port, translating its errors, given as classes: no adapter is imported here."""

    def __init__(
        self,
        session: Any,
        *,
        unavailable: tuple[type[BaseException], ...],
        lost: tuple[type[BaseException], ...],
        failed: tuple[type[BaseException], ...],
    ) -> None:
        self.session = session
        self._unavailable, self._lost, self._failed = unavailable, lost, failed

    @property
    def connected(self) -> bool:
        return bool(self.session.connected)

    async def hangup(self, channel: str, cause: int = CUT_CAUSE) -> Any:
        return await self._guard(self.session.hangup(channel, cause))

    async def originate(self, channel: str, **kwargs: Any) -> Any:
        return await self._guard(self.session.originate(channel, **kwargs))

    async def _guard(self, action: Awaitable[Any]) -> Any:
        try:
            return await action
        except self._unavailable as e:  # first: it may subclass a failure
            raise AsteriskUnavailable(f"AMI not connected: {e}") from e
        except self._lost as e:
            raise AsteriskActionLost(str(e) or type(e).__name__) from e
        except self._failed as e:
            text = str(e) or type(e).__name__
            raise (ChannelGone if "no such channel" in text.lower() else AsteriskFailed)(
                text
            ) from e


# --- checks on plain values --------------------------------------------------------------------


clean_reason = checks.reason


def _no_pin_keys() -> Any:
    raise RuntimeError("supervision sets no PINs: give Supervisor a PrisonerService for that")


def officer_endpoint(text: Any) -> str:
    """The endpoint name from "PJSIP/officer-1" or "officer-1"; Invalid for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid("officer_endpoint is required (PJSIP/NAME or NAME)")
    name = text.strip()
    if name[:6].upper() == "PJSIP/":
        name = name[6:]
    if not ENDPOINT.fullmatch(name):
        raise Invalid(
            f"invalid officer endpoint {text!r}: PJSIP/NAME or NAME, NAME of letters, digits, "
            "'.', '_' or '-' (no dial strings)"
        )
    return name


def seconds_left(
    answered_at: datetime | None, max_seconds: int | None, now: datetime
) -> int | None:
    if answered_at is None or max_seconds is None:
        return None
    return max(0, max_seconds - int((now - answered_at).total_seconds()))


# --- the use cases -----------------------------------------------------------------------------


class Supervisor:
    def __init__(
        self,
        store: SuperviseStore,
        control: CallControl,
        audit: AuditLog,
        *,
        clock: Callable[[], datetime],
        channels: LiveChannels | None = None,
        acceptances: Acceptances | None = None,
        trunk_endpoints: Sequence[str] = ("pstn",),
        officer_desks: Sequence[str] = (),
        grants: ListenGrants | None = None,
        cells: CellService | None = None,
        prisoners: PrisonerService | None = None,
    ) -> None:
        """``cells`` and ``prisoners``: the services that disable, enable, suspend and
        reinstate; by default made on ``store``, which must then also be their store (a
        ``transaction()``, as SqlSuperviseStore has)."""
        self.store, self.control, self.audit, self.clock = store, control, audit, clock
        self.channels = channels
        self.acceptances = acceptances
        self.trunk_endpoints = frozenset(trunk_endpoints)
        # The only endpoints an officer may listen from ([asterisk] officer_desks).
        self.officer_desks = frozenset(officer_desks)
        # One-time listen ids, shared with the FastAGI route that [cc-listen] asks.
        self.grants = grants if grants is not None else ListenGrants(clock)
        self.cells = cells or CellService(cast(Any, store))
        self.prisoners = prisoners or PrisonerService(cast(Any, store), pin_keys=_no_pin_keys)

    # --- reading ---

    async def live_calls(self) -> LiveView:
        """Calls not ended whose channel Asterisk still has, with the time they have left."""
        calls = await self.store.open_calls()
        live = self.channels() if self.channels is not None else None
        accepted: Mapping[str, datetime] = {}
        if self.acceptances is not None and any(c.answered_at is None for c in calls):
            accepted = await self.acceptances()
        now = self.clock()
        result = []
        for c in calls:
            if live is not None and c.uniqueid not in live:
                continue
            answered = c.answered_at or accepted.get(c.uniqueid)
            result.append(
                LiveCall(
                    c,
                    answered,
                    seconds_left(answered, c.max_seconds, now),
                    # Until recordings are tracked per call: every call but a privileged one.
                    recorded=not c.privileged,
                    channel=(live or {}).get(c.uniqueid) or c.channel,
                )
            )
        return LiveView(result, self.control.connected)

    async def health(self) -> Health:
        try:
            db = await self.store.healthy()
        except Exception:
            log.warning("health: the database check failed", exc_info=True)
            db = False
        return Health(ami=self.control.connected, db=db)

    async def audit_entries(self, limit: int = 100, action: str | None = None) -> list[Any]:
        if not 1 <= limit <= MAX_AUDIT_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_AUDIT_LIMIT}")
        return list(await self.audit.entries(limit=limit, action=action or None))

    # --- one call ---

    async def _call(self, call_id: int) -> CallRecord:
        """The call if it has not ended; NotFound otherwise."""
        call = await self.store.call(call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        if call.ended_at is not None:
            raise NotFound(f"call {call_id} has ended")
        return call

    def _live_channel(self, call: CallRecord) -> str:
        """The call's caller channel as Asterisk has it; 409 when we cannot know, 404 gone."""
        if not self.control.connected:
            raise AsteriskUnavailable("AMI not connected: nothing sent; try again shortly")
        if self.channels is None:
            return call.channel
        channel = self.channels().get(call.uniqueid)
        if channel is None:
            raise NotFound(f"call {call.call_id} has ended (Asterisk no longer has its channel)")
        return channel

    async def _audit(
        self, actor: Actor, action: str, target: str, reason: str, detail: str
    ) -> None:
        await self.audit.record(AuditNote(actor.name, actor.role, action, target, reason, detail))

    async def cut(self, actor: Actor, call_id: int, reason: Any) -> str:
        """Hang up the call's caller channel; returns it. Audited whatever Asterisk answered."""
        why = clean_reason(reason, required=True)
        call = await self._call(call_id)
        channel = self._live_channel(call)
        await self._hangup(actor, call, channel, why)
        return channel

    async def _hangup(self, actor: Actor, call: CallRecord, channel: str, reason: str) -> None:
        target = f"call:{call.call_id}"
        try:
            await self.control.hangup(channel, CUT_CAUSE)
        except ChannelGone as e:
            raise NotFound(f"call {call.call_id} has ended (Asterisk: {e})") from e
        except AsteriskActionLost as e:
            detail = f"Hangup {channel}: no reply ({e}); outcome unknown, not resent"
            log.warning("CUT call %s by %s: %s", call.call_id, actor.name, detail)
            await self._audit(actor, CUT, target, reason, detail)
            raise AsteriskActionLost(
                f"the Hangup of call {call.call_id} got no reply from Asterisk: it may or may "
                "not have been cut and is not resent; check the live calls, cut again if needed"
            ) from e
        except AsteriskFailed as e:
            await self._audit(actor, CUT, target, reason, f"Hangup {channel} failed: {e}")
            raise
        log.info("CUT call %s (%s) by %s: %s", call.call_id, channel, actor.name, reason or "-")
        await self._audit(actor, CUT, target, reason, f"hung up {channel}")

    async def listen(self, actor: Actor, call_id: int, endpoint: Any, reason: Any) -> str:
        """Ring the officer's desk, which then listens to the call (ChanSpy, listen only).
        Refused, and audited, for a privileged call and for an endpoint that is not a configured
        officer desk. The desk's call carries a one-time listen id: [cc-listen] shows it to the
        daemon (services/listen.py), which re-checks the call before any ChanSpy. Returns the
        officer's channel dialled."""
        why = clean_reason(reason)
        name = officer_endpoint(endpoint)
        dial, target = f"PJSIP/{name}", f"call:{call_id}"
        call = await self._listenable(actor, call_id, why, dial)
        if name in self.trunk_endpoints or await self.store.is_handset(name):
            raise Invalid(f"{name} is not an officer's endpoint (it is a trunk or a cell handset)")
        if name not in self.officer_desks:
            desks = ", ".join(sorted(self.officer_desks)) or "none"
            log.warning("LISTEN refused: %s is not an officer desk (%s asked, call %s)",
                        dial, actor.name, call_id)  # fmt: skip
            await self._audit(actor, LISTEN_REFUSED, target, why, f"{dial}: not an officer desk")
            raise Refused(
                f"{name} is not a configured officer desk ([asterisk] officer_desks: {desks})"
            )
        await self._start_listen(
            actor, call, why, dial=dial, desk=name, ring_ms=LISTEN_RING_MS
        )  # fmt: skip
        return dial

    async def listen_in_browser(
        self, actor: Actor, call_id: int, reason: Any, *, dial: str, listener: str
    ) -> str:
        """Originate ``dial``, the daemon's own AudioSocket (services/browser_listen.py), into
        [cc-listen], where ``listener`` (the channel name Asterisk gives it) must present the
        one-time id: the same re-checks as a desk's, audited the same way. Returns the call's
        channel that will be listened to."""
        why = clean_reason(reason)
        call = await self._listenable(actor, call_id, why, f"browser ({listener})")
        return await self._start_listen(
            actor, call, why, dial=dial, desk=BROWSER_DESK, ring_ms=BROWSER_CONNECT_MS,
            listener=listener,
        )  # fmt: skip

    async def _listenable(self, actor: Actor, call_id: int, why: str, who: str) -> CallRecord:
        """The live call, unless it is privileged (refused and audited whoever asks)."""
        call = await self._call(call_id)
        if call.privileged:
            log.warning("LISTEN refused: call %s is privileged (%s asked, for %s)",
                        call_id, actor.name, who)  # fmt: skip
            await self._audit(
                actor, LISTEN_REFUSED, f"call:{call_id}", why, f"{PRIVILEGED_REFUSAL}; {who}"
            )
            raise Refused(PRIVILEGED_REFUSAL)
        return call

    async def _start_listen(
        self, actor: Actor, call: CallRecord, why: str, *, dial: str, desk: str, ring_ms: int,
        listener: str = "",
    ) -> str:  # fmt: skip
        """Issue the one-time id, audit, and originate ``dial`` into [cc-listen] with it."""
        call_id, target = call.call_id, f"call:{call.call_id}"
        channel = self._live_channel(call)
        try:
            grant = self.grants.issue(
                call_id=call_id, uniqueid=call.uniqueid, spy_channel=channel, desk=desk,
                actor=actor.name, role=actor.role, listener=listener,
            )  # fmt: skip
        except TooManyWaiting as e:
            raise AsteriskUnavailable(f"{e}: try again shortly") from e
        # Audited before the phone rings: nobody listens without a record of it.
        await self._audit(actor, LISTEN, target, why, f"{listener or dial} listens to {channel}")
        try:
            await self.control.originate(
                dial,
                context=LISTEN_CONTEXT,
                exten=LISTEN_EXTEN,
                timeout_ms=ring_ms,
                caller_id=f'"Listen call {call_id} {call.cell}" <listen>',
                variables={
                    SPY_CHANNEL_VAR: channel,
                    LISTEN_CALL_VAR: str(call_id),
                    LISTEN_ID_VAR: grant.listen_id,
                },
            )
        except AsteriskActionLost as e:
            # The desk may ring all the same: its id stays good until it expires.
            detail = f"Originate {dial}: no reply ({e}); outcome unknown, not resent"
            await self._audit(actor, LISTEN_FAILED, target, why, detail)
            raise AsteriskActionLost(
                f"the Originate to {dial} got no reply from Asterisk: the phone may or may not "
                "ring, and it is not resent; try again by hand if it does not"
            ) from e
        except AsteriskFailed as e:
            self.grants.revoke(grant.listen_id)  # the desk never rang: nobody may use the id
            await self._audit(actor, LISTEN_FAILED, target, why, f"Originate {dial}: {e}")
            raise AsteriskFailed(f"could not connect {dial} to listen: {e}") from e
        log.info("LISTEN call %s (%s) by %s on %s", call_id, channel, actor.name, dial)
        return channel

    # --- cells and prisoners ---

    async def _sweep(self, actor: Actor, calls: Sequence[CallRecord], reason: str) -> Sweep:
        """Cut each call still live; report those that could not be cut, never resend."""
        sweep = Sweep()
        for call in calls:
            try:
                await self._hangup(actor, call, self._live_channel(call), reason)
            except NotFound:
                continue  # ended meanwhile: nothing to cut
            except SuperviseError as e:
                sweep.not_cut.append((call.call_id, str(e)))
            else:
                sweep.cut.append(call.call_id)
        return sweep

    # The change itself is CellService's and PrisonerService's, the same for every edge (the
    # console, the API, the CLI): checked, done and audited there in one transaction. What
    # supervision adds is cutting the live calls at once.

    async def disable_cell(self, actor: Actor, name: str, reason: Any) -> Sweep:
        """Disable the cell (every new call refused) and cut its live calls at once."""
        cell = await self.cells.disable(actor, name, reason)
        why = cell.disabled_reason
        log.info("CELL %s disabled by %s: %s", name, actor.name, why or "-")
        return await self.cut_cell_calls(actor, name, why or f"cell {name} disabled")

    async def enable_cell(self, actor: Actor, name: str, reason: Any = "") -> None:
        """Let the cell call again (an admin's act only)."""
        await self.cells.enable(actor, name, reason)
        log.info("CELL %s enabled by %s", name, actor.name)

    async def cut_cell_calls(self, actor: Actor, name: str, reason: Any = "") -> Sweep:
        why = clean_reason(reason) or f"calls of cell {name} cut"
        return await self._sweep(actor, await self.store.open_calls(cell=name), why)

    async def suspend_prisoner(self, actor: Actor, number: str, reason: Any) -> Sweep:
        """Suspend the prisoner (every new call refused) and cut their live calls at once."""
        prisoner = await self.prisoners.suspend(actor, number, reason)
        why = prisoner.suspended_reason
        log.info("PRISONER %s suspended by %s: %s", number, actor.name, why or "-")
        return await self.cut_prisoner_calls(actor, number, why or f"prisoner {number} suspended")

    async def reinstate_prisoner(self, actor: Actor, number: str, reason: Any = "") -> None:
        """Let the prisoner call again (an admin's act only)."""
        await self.prisoners.reinstate(actor, number, reason)
        log.info("PRISONER %s reinstated by %s", number, actor.name)

    async def cut_prisoner_calls(self, actor: Actor, number: str, reason: Any = "") -> Sweep:
        why = clean_reason(reason) or f"calls of prisoner {number} cut"
        return await self._sweep(actor, await self.store.open_calls(prison_number=number), why)
