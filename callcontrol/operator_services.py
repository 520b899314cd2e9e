"""The operator's services wired to the SQL store and the settings: what the console, the JSON
API, the kiosk and the CLI each build once and call for every act (one path per act).

    services = operator_services(settings, sessions)
    await services.contacts.approve(Actor("jane", "officer"), "A1234BC", "020 7946 0000", "ok")

``session_services(session, settings)`` does the same inside a session the caller holds and
commits (a provisioning script making many changes in one transaction, a test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcontrol.adapters.db.operator_store import SessionStore, SqlOperatorStore
from callcontrol.config import Settings
from callcontrol.domain.pins import Keys
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


def _no_keys() -> Keys:
    raise RuntimeError("no PIN secret given to these services")


def build(
    store: Any,
    *,
    pin_keys: Callable[[], Keys] = _no_keys,
    pin_digits: int = 4,
    region: str = "GB",
    max_social: int = 20,
    max_legal: int = 15,
    max_balance: int | None = 5000,
    site_max_call_s: int | None = None,
) -> OperatorServices:
    """Every operator's service on ``store`` (an operator's store: ``transaction()``)."""
    return OperatorServices(
        cells=CellService(store),
        prisoners=PrisonerService(
            store, pin_keys=pin_keys, pin_digits=pin_digits, site_max_call_s=site_max_call_s,
            max_social_contacts=max_social, max_legal_contacts=max_legal,
        ),
        contacts=ContactService(store, region=region, max_social=max_social, max_legal=max_legal),
        numbers=NumberService(store, region=region),
        accounts=AccountService(store, max_balance=max_balance),
    )  # fmt: skip


def _settings(settings: Settings) -> dict[str, Any]:
    site = settings.site
    return {
        "pin_keys": lambda: settings.pin_keys(create=True),  # read when a PIN is set
        "pin_digits": site.pin_digits,
        "region": site.region,
        "max_social": site.max_social_contacts,
        "max_legal": site.max_legal_contacts,
        "max_balance": settings.billing.max_balance_pence,
        "site_max_call_s": settings.billing.max_call_s,
    }


def operator_services(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> OperatorServices:
    """Every operator's service on the SQL store, configured by ``settings``; each act is a
    transaction of its own."""
    return build(SqlOperatorStore(sessions), **_settings(settings))


def session_services(
    session: AsyncSession, settings: Settings | None = None, **kw: Any
) -> OperatorServices:
    """The services inside ``session`` (flushed, never committed: the caller commits or rolls
    back); configured by ``settings`` if given, then by ``kw`` (build's keywords)."""
    config = _settings(settings) if settings is not None else {}
    return build(SessionStore(session), **(config | kw))
