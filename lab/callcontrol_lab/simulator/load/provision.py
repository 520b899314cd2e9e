"""The load prison in the daemon's database: cells, prisoners, PINs, contacts and credit.

Idempotent: a cell, prisoner or contact that is there already is reused (its PIN set again to
the plan's), so a second run on the same database adds nothing it does not need. Every change
goes through the same services as the ``callcontrol`` commands (callcontrol/services).

The database keeps only each handset's digest hash, so the SIP passwords this provisioning makes
are kept in the lab's handsets file ([lab] handsets_file, mode 0600; see handsets.py), where
the load's handsets find them. A load cell in the database whose password the lab does not know
(made elsewhere, or before hashes) is given a new one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db import pin_store
from callcontrol.adapters.db.engine import database_url, make_engine, session_factory
from callcontrol.adapters.db.tables import Cell, utcnow
from callcontrol.config import Settings
from callcontrol.domain import sip_digest
from callcontrol.domain.numbers import normalise_for_list
from callcontrol.operator_services import OperatorServices, session_services
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol.services.errors import NotFound, ServiceError
from callcontrol_lab import handsets
from callcontrol_lab.simulator.load.plan import MAIN, NUMBERS, SHORT, WRONG, LoadCell, LoadPlan

log = logging.getLogger("callcontrol.sim.load")

BY = "callcontrol-sim load"
LAB = Actor(BY, OPERATOR)
UNLOCK_REASON = "load run: the wrong-PIN cells start without the wrong PINs of earlier runs"
SHORT_CREDIT_PENCE = 2  # buys 17 s of a mobile at 6.88p/min: less than a minute, refused
# The contacts of every load prisoner: (number, kind).
CONTACTS = (
    (NUMBERS["social"], "social"),
    (NUMBERS["busy"], "social"),
    (NUMBERS["noanswer"], "social"),
    (NUMBERS["mobile"], "social"),
    (NUMBERS["legal"], "legal"),
)


class ProvisionError(Exception):
    """The database could not be made ready for the load; the message says why."""


@dataclass
class Provisioned:
    passwords: dict[str, str]  # cell name -> SIP password
    cells_added: int
    prisoners_added: int
    contacts_added: int
    topped_up_pence: int


async def provision(settings: Settings, plan: LoadPlan) -> Provisioned:
    """Make every cell of the plan exist with its prisoner, PIN, contacts and credit."""
    engine = make_engine(database_url(settings))
    sessions = session_factory(engine)
    region = settings.site.region
    counts = {"cells": 0, "prisoners": 0, "contacts": 0, "topup": 0}
    passwords: dict[str, str] = {}
    known = handsets.recall(handsets.path_of(settings))
    run = uuid.uuid4().hex[:12]
    try:
        for cell in plan.cells:
            async with sessions() as s, s.begin():
                ops = session_services(s, settings)
                passwords[cell.name] = await _cell(s, ops, cell, counts, known.get(cell.name))
                await _prisoner(s, ops, cell, counts)
                await _contacts(s, ops, cell, region, counts)
                if cell.pool == WRONG:  # last run's wrong PINs would lock its handset
                    await pin_store.unlock_handset(
                        s, cell.name, actor=BY, role="system", reason=UNLOCK_REASON, now=utcnow()
                    )
                bal = await ops.accounts.balance(cell.prison_number)
                amount = _topup_amount(cell, bal.balance, bal.available, settings)
                if amount > 0:
                    reference = f"load-{run}-{cell.prison_number}"
                    await ops.accounts.topup(LAB, cell.prison_number, amount, reference)
                    counts["topup"] += amount
    except ServiceError as e:
        raise ProvisionError(f"cannot provision the load prison: {e}") from None
    finally:
        await engine.dispose()
        handsets.remember(handsets.path_of(settings), passwords)  # those made before a failure
    return Provisioned(
        passwords, counts["cells"], counts["prisoners"], counts["contacts"], counts["topup"]
    )


def _topup_amount(cell: LoadCell, balance: int, available: int, settings: Settings) -> int:
    """Funded prisoners are kept above half the cap (filled to the cap); the short-credit ones
    get 2p once and never more."""
    cap = settings.billing.max_balance_pence
    if cell.pool == MAIN:
        return cap - balance if available < cap // 2 else 0
    if cell.pool == SHORT:
        return SHORT_CREDIT_PENCE if balance == 0 else 0
    return 0


async def _cell(
    s: AsyncSession, ops: OperatorServices, cell: LoadCell, counts: dict[str, int],
    known: str | None,
) -> str:  # fmt: skip
    """The cell's SIP password: a new cell's, the lab's known one, or a new one."""
    row = await s.scalar(select(Cell).where(Cell.name == cell.name))
    if row is None:
        _, password = await ops.cells.add(LAB, cell.name, wing="LOAD")
        counts["cells"] += 1
        return password
    if not row.enabled:
        await ops.cells.enable(LAB, cell.name)
    if known is not None and row.sip_md5_cred == sip_digest.md5_cred(
        row.sip_username, row.sip_realm, known
    ):
        return known
    _, password = await ops.cells.set_sip_password(LAB, cell.name)
    return password


async def _prisoner(
    s: AsyncSession, ops: OperatorServices, cell: LoadCell, counts: dict[str, int]
) -> None:
    prisoners = ops.prisoners
    try:
        found = await prisoners.view(cell.prison_number)
    except NotFound:
        await prisoners.add(LAB, cell.prison_number, f"Load {cell.name}", cell.pin, cell.name)
        counts["prisoners"] += 1
        return
    if found.cell != cell.name:
        await prisoners.move(LAB, cell.prison_number, cell.name)
    if not found.active:
        await prisoners.reinstate(LAB, cell.prison_number)
    await prisoners.set_pin(LAB, cell.prison_number, cell.pin)


async def _contacts(
    s: AsyncSession, ops: OperatorServices, cell: LoadCell, region: str, counts: dict[str, int]
) -> None:
    have = {c.number: c.status for c in await ops.contacts.of(cell.prison_number)}
    for number, kind in CONTACTS:
        listed = normalise_for_list(number, region).number
        status = have.get(listed or number)
        if status is None:
            await ops.contacts.add(LAB, cell.prison_number, number, kind, "load test")
            counts["contacts"] += 1
        if status != "approved":
            await ops.contacts.approve(LAB, cell.prison_number, number)


async def sync_asterisk(config: str | None) -> None:
    """``callcontrol asterisk sync``: Asterisk learns the load cells' handsets."""
    from callcontrol.cli import main as cli

    argv = ["asterisk", "sync"] + (["--config", config] if config else [])
    code = await asyncio.to_thread(cli, argv)
    if code != 0:
        raise ProvisionError(
            "`callcontrol asterisk sync` failed (is the lab up? see the message above): "
            "Asterisk does not know the load cells"
        )


async def passwords(settings: Settings, the_plan: LoadPlan) -> dict[str, str]:
    """The plan's cells' SIP passwords, from the lab's handsets file (--no-provision)."""
    have = handsets.recall(handsets.path_of(settings))
    missing = [c.name for c in the_plan.cells if c.name not in have]
    if missing:
        raise ProvisionError(
            f"{len(missing)} of the plan's cells have no SIP password in the lab's handsets file "
            f"{handsets.path_of(settings)} (first: {missing[0]}); provision them (run without "
            "--no-provision)"
        )
    return {c.name: have[c.name] for c in the_plan.cells}
