"""The FastAGI request from a call's hangup handler: the facts of its end, to settle it.

AGI(agi://.../call-end,UNIQUEID,ACCEPTED_AT,ENDED_AT,DIALSTATUS,HANGUPCAUSE,HANGUPSOURCE)
The channel is already hung up; nothing is asked of it, so no command is sent.
"""

from __future__ import annotations

import logging

from callcontrol.adapters.agi.cell_call import UNIQUEID_FORMAT
from callcontrol.adapters.agi.protocol import AgiChannel
from callcontrol.domain.call_end import from_fields
from callcontrol.services.settle import Settler

log = logging.getLogger("callcontrol.agi.call_end")


class CallEndHandler:
    def __init__(self, settler: Settler) -> None:
        self.settler = settler

    @staticmethod
    def call_of(channel: AgiChannel) -> str | None:
        """The call this end is about (its unique id, the first argument), for the log."""
        args = channel.args
        return args[0] if args and UNIQUEID_FORMAT.fullmatch(args[0]) else None

    async def __call__(self, channel: AgiChannel) -> None:
        try:
            end = from_fields(channel.args)
        except ValueError as e:
            # The journal still has the call's end; the next reconciliation settles it.
            log.error(
                "call-end from %s refused: %s (arguments %r)",
                channel.channel or "?",
                e,
                channel.args[:8],
            )
            return
        await self.settler.settle(end, source="hangup handler")
