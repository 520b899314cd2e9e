"""Numbers for every prisoner: blocked (beats any approval) or allowed without approval (help
lines; ``privileged``: never recorded or monitored). An admin's act, audited."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from callcontrol.domain.model import GlobalPolicy
from callcontrol.domain.roles import Right
from callcontrol.services import checks
from callcontrol.services.actors import Actor, AuditNote, note, require
from callcontrol.services.views import GlobalNumberView

BLOCK, ALLOW = "number_block", "number_allow"


class NumberTx(Protocol):
    async def global_numbers(self) -> list[GlobalNumberView]: ...

    async def set_global_number(
        self, number: str, policy: str, privileged: bool, label: str, changed_by: str
    ) -> GlobalNumberView:
        """Insert or update (an empty label keeps the old one); Conflict on a race."""
        ...

    async def audit(self, note: AuditNote) -> None: ...


class NumberStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A NumberTx."""
        ...


class NumberService:
    def __init__(self, store: NumberStore, *, region: str = "GB") -> None:
        self.store, self.region = store, region

    async def list(self) -> list[GlobalNumberView]:
        """Blocked first, then allowed, by number."""
        async with self.store.transaction() as tx:
            return await tx.global_numbers()

    async def block(self, actor: Actor, number: str, label: str = "") -> GlobalNumberView:
        """Block a number for every prisoner, whatever their lists say."""
        require(actor, Right.ADMINISTER, f"block {number} for everyone")
        return await self._set(actor, number, GlobalPolicy.BLOCKED, False, label, BLOCK)

    async def allow(
        self, actor: Actor, number: str, privileged: bool = False, label: str = ""
    ) -> GlobalNumberView:
        """Let every prisoner call a number without approval."""
        require(actor, Right.ADMINISTER, f"allow {number} for everyone")
        return await self._set(actor, number, GlobalPolicy.ALLOWED, privileged, label, ALLOW)

    async def _set(
        self,
        actor: Actor,
        number: str,
        policy: GlobalPolicy,
        privileged: bool,
        label: str,
        action: str,
    ) -> GlobalNumberView:
        label = checks.text(label, "label", checks.MAX_LABEL)
        by = checks.by(actor.name)
        normalised = checks.list_number(number, self.region)
        async with self.store.transaction() as tx:
            entry = await tx.set_global_number(normalised, policy.value, privileged, label, by)
            detail = f"{policy}" + (" (privileged)" if privileged else "")
            await tx.audit(note(actor, action, f"number:{normalised}", detail=detail))
            return entry
