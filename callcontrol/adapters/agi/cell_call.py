"""The FastAGI conversation for a call from a cell handset: PIN prompts, then the decision.

It only asks, decides through the Authoriser and sets one channel variable, the whole answer
(channel_vars.ANSWER); the dialplan bridges. Anything unexpected ends with no allow set, so the
dialplan refuses the call (fail closed). The balance enquiry ([site] balance_code after the
PIN) is the one other answer: the decision "balance" with the figures as whole numbers, which
the dialplan says and never dials. An allowed call costs four AGI round trips: ANSWER, GET
DATA (the PIN), SET VARIABLE (the answer), CHANNEL STATUS (still there to take it?).

The conversation runs on the Local channel that the handset's channel dials ([cc-decide] in
dialplan/cells.conf), so the call it is about is named in the arguments, not by the AGI
environment: AGI(...,ENDPOINT,DIALLED,SIP_CALL_ID,HANDSET_UNIQUEID,HANDSET_CHANNEL), every
one but the unique id base64-encoded by the dialplan, so that no comma, quote or control
character in what a handset sent can split or shift an argument (``call_args``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from callcontrol import channel_vars as cv
from callcontrol.adapters.agi.protocol import AgiChannel, AgiError, AgiHangup
from callcontrol.domain.balance import BalanceFigures
from callcontrol.domain.decide import CallPlan
from callcontrol.domain.dialling import (
    MAX_NUMBER_KEYS,
    is_code,
    is_two_stage,
    keyed_number_problem,
)
from callcontrol.domain.model import Decision, Handset, Prisoner, Reason
from callcontrol.services.authorise import Authoriser, CallAttempt, Decided

log = logging.getLogger("callcontrol.agi.cell_call")

# Asterisk's unique ids ("1733380000.42", or with a system name in front).
UNIQUEID_FORMAT = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The most keys one PIN entry reads: far more than any PIN, so that a longer entry is read
# whole (and is wrong), not cut to a PIN's length. "#" ends the entry; so does the timeout.
MAX_PIN_KEYS = 20


class BadCallArgs(ValueError):
    """The dialplan's arguments are not what cells.conf sends: nothing is decided on them."""


def _b64(value: str, what: str) -> str:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise BadCallArgs(f"the {what} is not base64") from e
    # Kept as sent: bytes that are not UTF-8 become \xNN escapes rather than vanish.
    return raw.decode("utf-8", errors="backslashreplace")


def call_args(args: list[str]) -> CallAttempt:
    """The call an AGI request is about, from its arguments (see the module's docstring).

    Raises BadCallArgs for anything else: a wrong count, a value that is not base64, an odd
    unique id. Nothing is ever taken by a position that a handset's input could shift."""
    if len(args) != 5:
        raise BadCallArgs(f"expected 5 arguments, got {len(args)}")
    endpoint_b64, dialled_b64, call_id_b64, uniqueid, channel_b64 = args
    if not UNIQUEID_FORMAT.fullmatch(uniqueid):
        raise BadCallArgs(f"odd unique id {uniqueid[:70]!r}")
    return CallAttempt(
        endpoint=_b64(endpoint_b64, "endpoint"),
        dialled=_b64(dialled_b64, "dialled number"),
        channel=_b64(channel_b64, "channel"),
        uniqueid=uniqueid,
        sip_call_id=_b64(call_id_b64, "SIP Call-ID"),
    )


def call_of(channel: AgiChannel) -> str | None:
    """The call a cell-call or cell-refused request is about (the handset channel's unique
    id), for the log; None when the arguments are not as cells.conf sends them."""
    args = channel.args
    return args[3] if len(args) == 5 and UNIQUEID_FORMAT.fullmatch(args[3]) else None


@dataclass(frozen=True)
class PinPrompting:
    tries: int = 3
    digits: int = 4  # the site's PIN length ([site] pin_digits); an entry is read whole anyway
    timeout_ms: int = 8000  # for the first key and between keys; "#" ends the entry sooner
    # Two-stage dialling: the number that asks for the number after the PIN ("": off), and
    # how long to wait for each key of it ("#" ends it sooner).
    two_stage_number: str = ""
    number_timeout_ms: int = 5000
    # The service code that says the balance and the minutes left instead of placing a call,
    # en bloc or keyed in two stages, after the PIN ("": off).
    balance_code: str = ""


class CellCallHandler:
    """The route for ``cell-call``, run on the decision's Local channel (see ``call_args``).

    ``on_late_allow`` is called with the attempt when an allow was stored (the call opened,
    its credit reserved) but the Local channel was gone by then: the handset's dialplan has
    refused the call (its Dial S() ran out, or the handset hung up), so the call must be
    settled at once as never answered. (If the Local channel goes after this check, the
    handset's hangup, seen on AMI, settles it: the allow was stored before.)"""

    def __init__(
        self,
        authoriser: Authoriser,
        prompting: PinPrompting,
        on_late_allow: Callable[[CallAttempt], Awaitable[object]] | None = None,
    ) -> None:
        self.auth = authoriser
        self.prompting = prompting
        self.on_late_allow = on_late_allow
        self.call_of = call_of  # the server logs the request under this call (logging_setup)

    async def __call__(self, channel: AgiChannel) -> None:
        try:
            attempt = call_args(channel.args)
        except BadCallArgs as e:
            # Not what cells.conf sends: nothing to decide on, nothing trustworthy to store.
            log.error("cell-call from %s refused: %s", channel.channel or "?", e)
            await _refuse_quietly(channel)
            return
        handset: Handset | None = None
        prisoner: Prisoner | None = None
        stored = False  # once the decision is stored, a later hang-up changes nothing
        try:
            handset, refusal = await self.auth.handset(attempt)
            if refusal is None:
                assert handset is not None
                # The dialplan leaves the answer to us: the handset hears its 200 OK now, as
                # the prompt is about to play, so keys sent at once are never lost in the wait.
                await channel.answer()
                prisoner, refusal = await self._ask_pin(channel, handset)
            if refusal is None and is_two_stage(attempt.dialled, self.prompting.two_stage_number):
                # Stored and decided as what was keyed, exactly as an en-bloc number.
                keyed, refusal = await self._ask_number(channel)
                attempt = replace(attempt, dialled=keyed)
            if refusal is None:
                assert handset is not None and prisoner is not None
                enquiry = is_code(attempt.dialled, self.prompting.balance_code)
                # Read, decided and stored in one unit of work.
                decided = await self.auth.decide(
                    attempt, handset=handset, prisoner=prisoner, enquiry=enquiry
                )
            else:  # known before any number was looked at: nothing left to decide
                decided = Decided(
                    await self.auth.finish(
                        attempt, refusal, handset=handset, prisoner=prisoner, decision_ms=0.0
                    )
                )
            stored = True
            decision, plan = decided.decision, decided.plan
            if decided.figures is not None:
                await self._say_balance(channel, decided.figures)
                return
            await self._apply(channel, decision, plan)
            if decision.allowed:
                await self._confirm(channel, attempt)
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
            await _refuse_quietly(channel)

    async def _confirm(self, channel: AgiChannel, attempt: CallAttempt) -> None:
        """Is the Local channel still there to hand the allow over? If not, it came too late.

        Its own round trip: the answer's SET VARIABLE cannot tell, since res_agi runs SET
        VARIABLE on a channel already hung up (200 result=1) and refuses CHANNEL STATUS (511)."""
        try:
            await channel.command("CHANNEL STATUS")
            return
        except AgiHangup:
            pass
        log.warning(
            "call on %s allowed too late: the handset was refused meanwhile; releasing it",
            attempt.channel or "?",
        )
        if self.on_late_allow is not None:
            await self.on_late_allow(attempt)

    async def _ask_pin(
        self, channel: AgiChannel, handset: Handset
    ) -> tuple[Prisoner | None, Decision | None]:
        p = self.prompting
        prompt = cv.PROMPT_PIN
        keys = max(MAX_PIN_KEYS, p.digits + 1)
        for try_no in range(p.tries):
            # The whole entry, up to "#" or the timeout: "24680" is not the PIN 2468.
            digits, _timed_out = await channel.get_data(prompt, p.timeout_ms, keys)
            # after the digits: the try's one read is never held while waiting for keys
            check = await self.auth.check_pin(handset, digits, tries_left=p.tries - try_no)
            if check.refusal is not None:
                return None, check.refusal
            if check.prisoner is not None:
                return check.prisoner, None
            prompt = cv.PROMPT_PIN_WRONG
        return None, Decision.refuse(Reason.WRONG_PIN)

    async def _ask_number(self, channel: AgiChannel) -> tuple[str, Decision | None]:
        """Two-stage dialling: the number keyed after the PIN, up to "#" or a pause. Keyed
        digits are as hostile as a Request-URI: held to the dialplan's rule before anything."""
        keyed, _timed_out = await channel.get_data(
            cv.PROMPT_NUMBER, self.prompting.number_timeout_ms, MAX_NUMBER_KEYS
        )
        problem = keyed_number_problem(keyed)
        if problem is not None:
            return keyed, Decision.refuse(Reason.INVALID_NUMBER, detail=problem)
        return keyed, None

    @staticmethod
    async def _apply(channel: AgiChannel, decision: Decision, plan: CallPlan | None) -> None:
        """The whole answer in one SET VARIABLE (channel_vars.ANSWER): the dialplan bridges
        only an allow of exactly its shape, with a number and a time limit."""
        reason = decision.reason.value
        if decision.allowed and decision.number and plan is not None:
            record = "no" if decision.privileged else "yes"
            limit_ms = str(plan.limit.seconds * 1000)
            said = cv.answer(cv.ALLOW, reason, decision.number, limit_ms, record)
        else:
            said = cv.answer(cv.REFUSE, reason)
        await channel.set_variable(cv.ANSWER, said)

    @staticmethod
    async def _say_balance(channel: AgiChannel, figures: BalanceFigures) -> None:
        """The figures for [cc-balance], whole numbers only, in the one answer that says them."""
        said = cv.answer(
            cv.BALANCE,
            Reason.BALANCE_ENQUIRY.value,
            "1" if figures.negative else "0",
            str(figures.pounds),
            str(figures.pence),
            str(figures.minutes_left),
        )
        await channel.set_variable(cv.ANSWER, said)

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


async def _refuse_quietly(channel: AgiChannel) -> None:
    """Say refuse, if the channel still listens; the dialplan refuses without it anyway. It
    replaces any answer set before (one variable: the last answer set is the one read)."""
    try:
        await channel.set_variable(cv.ANSWER, cv.answer(cv.REFUSE, Reason.INTERNAL_ERROR.value))
    except (AgiError, OSError):
        pass


class CellRefusedHandler:
    """The route for ``cell-refused``: record only. The dialplan refused the call on its own
    (what was dialled is not a number: [cells] checks it before anything is asked) and reports
    it from the call's hangup handler, with the arguments of ``cell-call``. Stored as refused
    (invalid_number) with what was dialled; nothing is sent back, nothing is decided."""

    def __init__(self, authoriser: Authoriser) -> None:
        self.auth = authoriser
        self.call_of = call_of

    async def __call__(self, channel: AgiChannel) -> None:
        try:
            attempt = call_args(channel.args)
        except BadCallArgs as e:
            log.error("cell-refused from %s ignored: %s", channel.channel or "?", e)
            return
        try:
            handset, _ = await self.auth.handset(attempt)
            await self.auth.finish(
                attempt,
                Decision.refuse(Reason.INVALID_NUMBER, detail="refused by the dialplan"),
                handset=handset,
                prisoner=None,
            )
        except Exception:
            log.exception("could not store the refusal of the call on %s", attempt.channel)
