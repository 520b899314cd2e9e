"""Listening in, authorised by the daemon at the moment it starts.

When an officer asks to listen (Supervisor.listen), the daemon issues a one-time listen id for
that live call, its caller channel and the officer's desk, and originates the desk's call into
the dialplan's [cc-listen] with the id. Before any ChanSpy, [cc-listen] asks the daemon over
FastAGI (adapters/agi/listen.py) with that id: ``ListenAuthoriser.authorise`` accepts an id once,
within a short time, on the desk's own channel, and only while the call is still live, still on
that channel and not privileged (looked up again, not remembered). The channel to spy on is the
daemon's answer, never a variable the Originate brought: an Originate into [cc-listen] by anyone
else (with the AMI secret, say) has no id, a made-up one or a used one, and no ChanSpy runs.

The ids live in the daemon's memory only: a restart forgets them, and a desk that rings across a
restart is refused (fail closed; the officer asks again).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from callcontrol.services.listen_grants import ID_LENGTH, ListenGrant, ListenGrants
from callcontrol.services.supervise import LISTEN_REFUSED, AuditLog, AuditNote, SuperviseStore

log = logging.getLogger("callcontrol.listen")

LISTEN_STARTED = "listen_started"


@dataclass(frozen=True)
class ListenVerdict:
    """The answer to [cc-listen]: ``spy_channel`` to ChanSpy on, or a refusal and why."""

    allowed: bool
    reason: str
    spy_channel: str = ""
    call_id: int | None = None


def presented_by_its_listener(grant: ListenGrant, channel: str) -> bool:
    """Is ``channel`` the one the grant was issued to? Exactly the listener channel named in
    advance (a browser's AudioSocket channel), else PJSIP/<desk>-<8 hex digits>: that desk's
    channel, not one of a desk named like it."""
    if grant.listener:
        return channel == grant.listener
    return re.fullmatch(rf"PJSIP/{re.escape(grant.desk)}-[0-9a-f]{{8}}", channel) is not None


class ListenAuthoriser:
    """Decides, when [cc-listen] asks, whether this desk's channel may listen now, and to what."""

    def __init__(
        self,
        grants: ListenGrants,
        store: SuperviseStore,
        audit: AuditLog,
        channels: Callable[[], Mapping[str, str]],
    ) -> None:
        self.grants, self.store, self.audit, self.channels = grants, store, audit, channels

    async def authorise(self, listen_id: str, officer_channel: str) -> ListenVerdict:
        """Claim the id (once) and re-check the call at this moment. Refusals are audited."""
        grant = (
            self.grants.claim(listen_id)
            if len(listen_id) == ID_LENGTH and listen_id.isalnum()
            else None
        )
        if grant is None:
            return await self._refuse(None, "no such listen id (unknown, used or expired)",
                                      officer_channel)  # fmt: skip
        if not presented_by_its_listener(grant, officer_channel):
            who = grant.listener or f"desk {grant.desk}"
            why = f"listen id issued for {who}, presented by {officer_channel}"
            return await self._refuse(grant, why, officer_channel)
        call = await self.store.call(grant.call_id)
        if call is None or call.ended_at is not None:
            return await self._refuse(grant, "the call has ended", officer_channel)
        if call.privileged:
            return await self._refuse(grant, "privileged call: never monitored", officer_channel)
        live = self.channels().get(grant.uniqueid)
        if live is None or live != grant.spy_channel:
            return await self._refuse(grant, "the call's channel is gone", officer_channel)
        await self.audit.record(
            AuditNote(
                grant.actor,
                grant.role,
                LISTEN_STARTED,
                f"call:{grant.call_id}",
                "",
                f"{officer_channel} listens to {live}",
            )  # fmt: skip
        )
        log.info("LISTEN call %s: %s now listens to %s", grant.call_id, officer_channel, live)
        return ListenVerdict(True, "authorised", live, grant.call_id)

    async def _refuse(
        self, grant: ListenGrant | None, why: str, officer_channel: str
    ) -> ListenVerdict:
        log.warning("LISTEN refused at start on %s: %s", officer_channel or "?", why)
        target = f"call:{grant.call_id}" if grant else "listen"
        actor, role = (grant.actor, grant.role) if grant else ("asterisk", "system")
        detail = f"{officer_channel or '?'}: {why}"[:2000]
        await self.audit.record(AuditNote(actor, role, LISTEN_REFUSED, target, "", detail))
        return ListenVerdict(False, why, "", grant.call_id if grant else None)
