"""The benchmark's data and databases: cells, prisoners, contacts and credit, provisioned with
the operator's own functions; a refusal to write into a real prison's database; scratch
PostgreSQL databases made and dropped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import normalise_url
from callcontrol.config import Settings
from callcontrol.domain.pins import hash_pin
from callcontrol.operator_services import session_services
from callcontrol.services.actors import OPERATOR, Actor
from callcontrol_lab.bench.micro.errors import BenchmarkError

CELL_PREFIX = "bench-"
HISTORY_CELL_PREFIX = f"{CELL_PREFIX}history-"  # the cells of a history (bench/history.py)
CONTACT_DIALLED = "02079460000"  # as the handset dials it: a UK landline, +442079460000
CONTACT_LABEL = "benchmark contact"
CREDIT_PENCE = 5000  # the default [billing] max_balance_pence
CHANGED_BY = "agi-micro-benchmark"
PROVISION_BATCH = 100  # cells per transaction while provisioning


# --- the data: cells, prisoners, contacts and credit ------------------------------------------


@dataclass(frozen=True)
class Inmate:
    cell: str
    prison_number: str
    pin: str
    prisoner_id: int


def _pin(i: int) -> str:
    return f"{(1000 + i * 7919) % 10000:04d}"


def _other_contacts(i: int) -> list[tuple[str, str, bool]]:
    """A mobile approved, a legal landline approved and a mobile pending, as the history's."""
    return [
        (f"+447700{i % 900000:06d}", "social", True),
        (f"+44161496{i % 10000:04d}", "legal", True),
        (f"+447911{i % 900000:06d}", "social", False),
    ]


async def provision(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    cells: int,
    tag: str,
    credit_pence: int = CREDIT_PENCE,
) -> list[Inmate]:
    """Add ``cells`` cells (wing B), each with one prisoner (a PIN), an approved social contact
    (CONTACT_DIALLED) and three more (``_other_contacts``), and ``credit_pence`` of credit,
    with the operator's own services."""
    secret = settings.pin_secret()
    by = Actor(CHANGED_BY, OPERATOR)
    inmates: list[Inmate] = []
    for start in range(0, cells, PROVISION_BATCH):
        async with sessions.begin() as s:
            ops = session_services(s, settings, pin_keys=lambda: secret)
            for i in range(start, min(cells, start + PROVISION_BATCH)):
                cell, number, pin = f"{CELL_PREFIX}{tag}-{i:05d}", f"B{tag}{i:05d}", _pin(i)
                await ops.cells.add(by, cell, wing="B")
                await ops.prisoners.add(by, number, f"Bench Prisoner {i}", pin, cell)
                await ops.contacts.add(by, number, CONTACT_DIALLED, "social", CONTACT_LABEL)
                await ops.contacts.approve(by, number, CONTACT_DIALLED)
                # The history's prisoners' other three (bench/history.py), so that the empty
                # database and the history differ only by the history: a decision reads a
                # prisoner's contacts, four rows either way.
                for other, kind, approved in _other_contacts(i):
                    await ops.contacts.add(by, number, other, kind, "family")
                    if approved:
                        await ops.contacts.approve(by, number, other)
                await ops.accounts.topup(by, number, credit_pence, f"bench-{tag}-{i}")
                query = select(m.Prisoner.id).where(m.Prisoner.prison_number == number)
                inmates.append(Inmate(cell, number, pin, await s.scalar(query)))
    return inmates


async def adopt(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, cells: int
) -> list[Inmate]:
    """The first ``cells`` prisoners of a history (bench/history.py: each alone in a cell,
    CONTACT_DIALLED approved, credit), each given a PIN of this run (hashed with its secret):
    the benchmark then decides calls of prisoners with months of calls behind them."""
    secret = settings.pin_secret()
    query = (
        select(m.Prisoner.id, m.Prisoner.prison_number, m.Cell.name)
        .join(m.Cell, m.Prisoner.cell_id == m.Cell.id)
        .where(m.Cell.name.startswith(HISTORY_CELL_PREFIX))
        .order_by(m.Prisoner.id)
        .limit(cells)
    )
    async with sessions.begin() as s:
        rows = (await s.execute(query)).all()
        if len(rows) < cells:
            raise BenchmarkError(f"the history has {len(rows)} prisoners, {cells} needed")
        inmates = [Inmate(cell, number, _pin(i), pid) for i, (pid, number, cell) in enumerate(rows)]
        for inmate in inmates:
            await s.execute(
                update(m.Prisoner)
                .where(m.Prisoner.id == inmate.prisoner_id)
                .values(pin_hash=hash_pin(secret, inmate.prison_number, inmate.pin))
            )
    return inmates


async def _refuse_foreign_database(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The benchmark writes cells, prisoners, calls and money: never into a real prison's."""
    async with sessions() as s:
        foreign = await s.scalar(
            select(func.count()).select_from(m.Cell).where(~m.Cell.name.startswith(CELL_PREFIX))
        )
    if foreign:
        raise BenchmarkError(
            f"the database has {foreign} cell(s) that the benchmark did not make: it writes "
            "cells, prisoners, calls and ledger entries, so give it a scratch database"
        )


# --- the database -------------------------------------------------------------------------------


async def _admin_sql(url: str, sql: str) -> None:
    engine = create_async_engine(
        normalise_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def create_scratch_database(server_url: str) -> str:
    """A new, empty PostgreSQL database on the server of ``server_url``; returns its URL."""
    u = normalise_url(server_url)
    if u.get_backend_name() != "postgresql":
        raise BenchmarkError("--scratch needs a PostgreSQL URL")
    name = f"cc_bench_{uuid.uuid4().hex[:12]}"
    await _admin_sql(u.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    await _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _server_version(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            return str(await s.scalar(text("SHOW server_version")))
        return str(await s.scalar(text("SELECT sqlite_version()")))
