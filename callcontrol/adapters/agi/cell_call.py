"""The FastAGI conversation for a call from a cell handset: PIN prompts, then the decision.

It only asks, decides through the Authoriser and sets channel variables; the dialplan bridges.
Anything unexpected ends with no allow set, so the dialplan refuses the call (fail closed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.protocol import AgiChannel, AgiError, AgiHangup
from callcontrol.domain.model import Decision, Handset, Prisoner, Reason
from callcontrol.services.authorise import Authoriser, CallAttempt, CallPlan

log = logging.getLogger("callcontrol.agi.cell_call")


@dataclass(frozen=True)
class PinPrompting:
    tries: int = 3
    digits: int = 4
    timeout_ms: int = 8000


class CellCallHandler:
    """The route for ``cell-call``: AGI(agi://.../cell-call,ENDPOINT,EXTEN,SIP_CALL_ID)."""

    def __init__(self, authoriser: Authoriser, prompting: PinPrompting) -> None:
        self.auth = authoriser
        self.prompting = prompting

    async def __call__(self, channel: AgiChannel) -> None:
        args = channel.args
        attempt = CallAttempt(
            endpoint=args[0] if args else "",
            dialled=args[1] if len(args) > 1 else "",
            channel=channel.channel,
            uniqueid=channel.uniqueid,
            sip_call_id=",".join(args[2:]),  # a Call-ID may hold commas: it is the last arg
        )
        handset: Handset | None = None
        prisoner: Prisoner | None = None
        stored = False  # once the decision is stored, a later hang-up changes nothing
        try:
            handset, refusal = await self.auth.handset(attempt)
            if refusal is None:
                assert handset is not None
                prisoner, refusal = await self._ask_pin(channel, handset)
            started = time.perf_counter()
            plan: CallPlan | None = None
            if refusal is None:
                assert prisoner is not None
                async with self.auth.reading():
                    decision, plan = await self.auth.decide_number(prisoner, attempt.dialled)
            else:
                decision = refusal
            decision = await self.auth.finish(
                attempt,
                decision,
                handset=handset,
                prisoner=prisoner,
                plan=plan,
                decision_ms=(time.perf_counter() - started) * 1000,
            )
            stored = True
            await self._apply(channel, decision, plan)
        except AgiHangup:
            if not stored:
                await self._record_quietly(
                    attempt, Decision.refuse(Reason.CALLER_HUNG_UP), handset, prisoner
                )
        except Exception as e:  # fail closed: nothing allowed is set; the dialplan refuses
            log.exception("deciding the call on %s failed", attempt.channel or "?")
            if not stored:
                await self._record_quietly(
                    attempt,
                    Decision.refuse(Reason.INTERNAL_ERROR, detail=type(e).__name__),
                    handset,
                    prisoner,
                )
            try:
                await channel.set_variable(cv.DECISION, cv.REFUSE)
            except (AgiError, OSError):
                pass

    async def _ask_pin(
        self, channel: AgiChannel, handset: Handset
    ) -> tuple[Prisoner | None, Decision | None]:
        p = self.prompting
        prompt = cv.PROMPT_PIN
        for try_no in range(p.tries):
            digits, _timed_out = await channel.get_data(prompt, p.timeout_ms, p.digits)
            async with self.auth.reading():  # after the digits: never held while waiting
                check = await self.auth.check_pin(handset, digits, tries_left=p.tries - try_no)
            if check.refusal is not None:
                return None, check.refusal
            if check.prisoner is not None:
                return check.prisoner, None
            prompt = cv.PROMPT_PIN_WRONG
        return None, Decision.refuse(Reason.WRONG_PIN)

    @staticmethod
    async def _apply(channel: AgiChannel, decision: Decision, plan: CallPlan | None) -> None:
        await channel.set_variable(cv.REASON, decision.reason.value)
        if decision.allowed and decision.number and plan is not None:
            # The number and the limit first: the dialplan bridges only once DECISION says
            # allow, and only with a time limit.
            await channel.set_variable(cv.NUMBER, decision.number)
            await channel.set_variable(cv.LIMIT_MS, str(plan.limit.seconds * 1000))
            await channel.set_variable(cv.RECORD, "no" if decision.privileged else "yes")
            await channel.set_variable(cv.DECISION, cv.ALLOW)
        else:
            await channel.set_variable(cv.DECISION, cv.REFUSE)

    async def _record_quietly(
        self,
        attempt: CallAttempt,
        decision: Decision,
        handset: Handset | None,
        prisoner: Prisoner | None,
    ) -> None:
        try:
            await self.auth.finish(attempt, decision, handset=handset, prisoner=prisoner)
        except Exception:
            log.exception("could not store the refusal of the call on %s", attempt.channel)
