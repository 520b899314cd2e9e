"""The port for the site's global numbers and tariffs, which every decision reads.

They change rarely (an operator's act) and are the same for every prisoner: an implementation
may read them from the database each time (adapters/db/globals_store.SqlGlobals) or keep them
in memory and refresh them when they change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from callcontrol.domain.model import GlobalNumber
from callcontrol.domain.tariffs import Tariff


class GlobalsSource(Protocol):
    async def global_numbers(self) -> Mapping[str, GlobalNumber]:
        """The numbers blocked or allowed for everyone, by number (E.164 or short code)."""
        ...

    async def tariffs(self) -> Mapping[str, Tariff]:
        """The tariffs, by destination class (domain/tariffs.rate_for's mapping)."""
        ...
