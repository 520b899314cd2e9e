"""Cells and their handsets: list and read them, add one, give its handset a new SIP password,
disable it (every call refused) and enable it again. One implementation for every edge: the
console, the JSON API (through services/supervise.py, which also cuts the live calls) and the
CLI. Every change is audited under the actor's name, in the same transaction as the change.
"""

from __future__ import annotations

import secrets
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from callcontrol.domain import sip_digest
from callcontrol.domain.roles import Right
from callcontrol.services import checks
from callcontrol.services.actors import Actor, AuditNote, note, require
from callcontrol.services.errors import Conflict, Invalid, NotFound
from callcontrol.services.views import CellView

# Audit actions
ADD, PASSWORD, DISABLE, ENABLE = "cell_add", "cell_password", "disable", "enable"


class CellTx(Protocol):
    """One transaction on the cells (committed when it ends normally, else rolled back)."""

    async def cells(self) -> list[CellView]: ...

    async def cell(self, name: str) -> CellView | None: ...

    async def cell_taken(self, name: str) -> bool:
        """Is ``name`` a cell's name or a handset's SIP username?"""
        ...

    async def add_cell(
        self, name: str, wing: str, sip_realm: str, sip_md5_cred: str
    ) -> CellView: ...

    async def set_cell_credential(self, name: str, sip_realm: str, sip_md5_cred: str) -> None: ...

    async def cell_credential(self, name: str) -> tuple[str, str] | None:
        """The handset's (SIP realm, digest hash), None for no such cell."""
        ...

    async def set_cell_enabled(self, name: str, enabled: bool, reason: str) -> None: ...

    async def audit(self, note: AuditNote) -> None: ...


class CellStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A CellTx (the SQL store's transaction implements every service's Tx)."""
        ...


async def _cell(tx: CellTx, name: str) -> CellView:
    cell = await tx.cell(name)
    if cell is None:
        raise NotFound(f"no cell named {name!r}")
    return cell


class CellService:
    def __init__(self, store: CellStore) -> None:
        self.store = store

    # --- reading ---

    async def list(self) -> list[CellView]:
        """Every cell, by name, with its prisoners and PIN lockout."""
        async with self.store.transaction() as tx:
            return await tx.cells()

    async def get(self, name: str) -> CellView:
        async with self.store.transaction() as tx:
            return await _cell(tx, name)

    # --- changing ---

    async def add(
        self, actor: Actor, name: str, sip_password: str | None = None, wing: str = ""
    ) -> tuple[CellView, str]:
        """Add a cell and its handset's SIP endpoint (username = cell name). Returns the cell
        and its SIP password (the one given, or a generated one): only its digest hash is
        stored (domain/sip_digest.py), so the caller shows the password once."""
        require(actor, Right.ADMINISTER, f"add cell {name}")
        checks.cell_name(name)
        wing = checks.text(wing, "wing", 32)
        password = checks.generate_sip_password() if sip_password is None else sip_password
        checks.sip_password(password)
        cred = sip_digest.md5_cred(name, sip_digest.REALM, password)
        async with self.store.transaction() as tx:
            if await tx.cell_taken(name):
                raise Conflict(f"cell {name} already exists")
            cell = await tx.add_cell(name, wing, sip_digest.REALM, cred)
            await tx.audit(note(actor, ADD, f"cell:{name}", detail=f"wing {wing or '-'}"))
        return cell, password

    async def set_sip_password(
        self, actor: Actor, name: str, sip_password: str | None = None
    ) -> tuple[CellView, str]:
        """Give a handset a new SIP password (given, or generated); returns it to show once.
        The old one stops working at the next `callcontrol asterisk sync`."""
        require(actor, Right.ADMINISTER, f"change the SIP password of cell {name}")
        password = checks.generate_sip_password() if sip_password is None else sip_password
        checks.sip_password(password)
        async with self.store.transaction() as tx:
            cell = await _cell(tx, name)
            cred = sip_digest.md5_cred(cell.sip_username, sip_digest.REALM, password)
            await tx.set_cell_credential(name, sip_digest.REALM, cred)
            await tx.audit(note(actor, PASSWORD, f"cell:{name}"))
            return await _cell(tx, name), password

    async def check_sip_password(self, name: str, sip_password: str) -> CellView:
        """The cell if ``sip_password`` is its handset's password (compared with the stored
        digest, in constant time), else Invalid."""
        async with self.store.transaction() as tx:
            cell = await _cell(tx, name)
            realm, cred = await tx.cell_credential(name) or ("", "")
        made = sip_digest.md5_cred(cell.sip_username, realm, sip_password)
        if not secrets.compare_digest(made, cred):
            raise Invalid(
                f"that is not cell {name}'s SIP password (it does not match the stored digest)"
            )
        return cell

    async def disable(self, actor: Actor, name: str, reason: Any = "") -> CellView:
        """Disable the handset: every new call from it refused until it is enabled. (Its live
        calls are cut by Supervisor.disable_cell, which calls this.)"""
        require(actor, Right.SUPERVISE, f"disable cell {name}")
        why = checks.reason(reason)
        return await self._set(actor, name, False, why, DISABLE)

    async def enable(self, actor: Actor, name: str, reason: Any = "") -> CellView:
        """Let the handset call again: an admin's act (it undoes what may be an admin's)."""
        require(actor, Right.ADMINISTER, f"enable cell {name}")
        why = checks.reason(reason)
        return await self._set(actor, name, True, why, ENABLE)

    async def _set(self, actor: Actor, name: str, enabled: bool, why: str, action: str) -> CellView:
        async with self.store.transaction() as tx:
            await _cell(tx, name)
            await tx.set_cell_enabled(name, enabled, "" if enabled else why)
            await tx.audit(note(actor, action, f"cell:{name}", why))
            return await _cell(tx, name)
