"""The FastAGI request [cc-listen] makes before any ChanSpy: may this desk listen now, to what?

AGI(${CC_AGI_URL}/listen,LISTEN_ID), on the officer's desk channel that the daemon originated.
The daemon's answer (services/listen.py) names the channel to listen to: CC_LISTEN=yes and
CC_LISTEN_SPY=<channel>. Anything else, an error included, sets neither, and the dialplan hangs
up without ChanSpy: fail closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.protocol import AgiChannel
from callcontrol.services.listen import ListenVerdict

log = logging.getLogger("callcontrol.agi.listen")

# (listen id, the asking channel) -> the verdict: ListenAuthoriser.authorise in the daemon.
Authorise = Callable[[str, str], Awaitable[ListenVerdict]]


class ListenHandler:
    def __init__(self, authorise: Authorise) -> None:
        self.authorise = authorise

    async def __call__(self, channel: AgiChannel) -> None:
        args = channel.args
        listen_id = args[0] if args else ""
        verdict = await self.authorise(listen_id, channel.channel)
        if not verdict.allowed:
            return  # nothing set: [cc-listen] hangs up
        await channel.set_variable(cv.LISTEN_SPY, verdict.spy_channel)
        await channel.set_variable(cv.LISTEN, "yes")
