"""The site's global numbers and tariffs, read from the database each time they are asked for
(services' GlobalsSource, without a cache): two statements built once, on one connection."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.call_store import engine_of
from callcontrol.domain.model import GlobalNumber, GlobalPolicy
from callcontrol.domain.tariffs import Tariff, tariffs_by_class

_numbers, _tariffs = m.GlobalNumber.__table__, m.TariffRow.__table__
GLOBAL_NUMBERS = select(
    _numbers.c.number, _numbers.c.policy, _numbers.c.privileged, _numbers.c.label
)
TARIFFS = select(_tariffs.c.destination_class, _tariffs.c.rate, _tariffs.c.weekend_rate)


class SqlGlobals:
    """services' GlobalsSource on the database, read afresh on every call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        # Reads only, one statement each: autocommit (no BEGIN and ROLLBACK around them).
        self.engine = engine_of(sessions).execution_options(isolation_level="AUTOCOMMIT")

    async def global_numbers(self) -> Mapping[str, GlobalNumber]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(GLOBAL_NUMBERS)
            return {
                r.number: GlobalNumber(
                    number=r.number,
                    policy=GlobalPolicy(r.policy),
                    privileged=bool(r.privileged),
                    label=r.label,
                )
                for r in rows
            }

    async def tariffs(self) -> Mapping[str, Tariff]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(TARIFFS)
            return tariffs_by_class(Tariff(*r) for r in rows)
