"""The operator's services wired to the SQL store and the settings: what the console, the JSON
API, the kiosk and the CLI each build once and call for every act (one path per act).

    services = operator_services(settings, sessions)
    await services.contacts.approve(Actor("jane", "officer"), "A1234BC", "020 7946 0000", "ok")
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.operator_store import SqlOperatorStore
from callcontrol.config import Settings
from callcontrol.services.accounts import AccountService
from callcontrol.services.cells import CellService
from callcontrol.services.contacts import ContactService
from callcontrol.services.numbers import NumberService
from callcontrol.services.prisoners import PrisonerService


@dataclass(frozen=True)
class OperatorServices:
    cells: CellService
    prisoners: PrisonerService
    contacts: ContactService
    numbers: NumberService
    accounts: AccountService


def operator_services(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> OperatorServices:
    """Every operator's service on one SQL store, configured by ``settings`` (the PIN keys
    are read when a PIN is set; made on first use, as `prisoner add` does)."""
    store = SqlOperatorStore(sessions)
    site = settings.site
    return OperatorServices(
        cells=CellService(store),
        prisoners=PrisonerService(
            store,
            pin_keys=lambda: settings.pin_keys(create=True),
            pin_digits=site.pin_digits,
            site_max_call_s=settings.billing.max_call_s,
            max_social_contacts=site.max_social_contacts,
            max_legal_contacts=site.max_legal_contacts,
        ),
        contacts=ContactService(
            store,
            region=site.region,
            max_social=site.max_social_contacts,
            max_legal=site.max_legal_contacts,
        ),
        numbers=NumberService(store, region=site.region),
        accounts=AccountService(store, max_balance=settings.billing.max_balance_pence),
    )
