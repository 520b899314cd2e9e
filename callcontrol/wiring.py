"""The decision's wiring from the settings: the billing policy and the Authoriser.

A module of its own, importing nothing of the daemon's servers, so that the benchmark's per-call
AGI script (lab/callcontrol_lab/bench/pyst2_agi.py) builds exactly what the daemon builds without
loading the daemon on every call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callcontrol.config import ConfigError, Settings
from callcontrol.domain.decide import BillingPolicy
from callcontrol.domain.limits import Caps
from callcontrol.domain.pins import LockoutPolicy
from callcontrol.domain.rules import SitePolicy
from callcontrol.domain.tariffs import Rounding
from callcontrol.domain.windows import parse_windows, parse_wing_windows
from callcontrol.services.authorise import Authoriser, CallStore
from callcontrol.services.globals_source import GlobalsSource


def utcnow() -> datetime:
    return datetime.now(UTC)


def billing_policy(settings: Settings) -> BillingPolicy:
    """The billing settings, checked: a bad calling window stops the daemon at start."""
    b = settings.billing
    try:
        windows = parse_windows(b.windows)
        wing_windows = parse_wing_windows(b.wing_windows)
    except ValueError as e:
        raise ConfigError(f"[billing] calling windows: {e}") from None
    return BillingPolicy(
        rounding=Rounding(b.rounding),
        max_call_s=b.max_call_s,
        caps=Caps(b.max_calls_per_day, b.max_minutes_per_day, b.max_minutes_per_week),
        windows=windows,
        wing_windows=wing_windows,
        tz=ZoneInfo(settings.site.timezone),
    )


def lockout_policy(settings: Settings) -> LockoutPolicy:
    """The PIN lockout settings, checked: a bad one stops the daemon at start."""
    site = settings.site
    try:
        return LockoutPolicy(
            failures=site.pin_lockout_failures,
            window=timedelta(seconds=site.pin_lockout_window_s),
            lockout=timedelta(seconds=site.pin_lockout_s),
            growth=site.pin_lockout_growth,
            max_lockout=timedelta(seconds=site.pin_lockout_max_s),
            daily_failures=site.pin_daily_failures,
        )
    except ValueError as e:
        raise ConfigError(f"[site] PIN lockout: {e}") from None


def build_authoriser(
    settings: Settings, store: CallStore, globals_source: GlobalsSource
) -> Authoriser:
    """The Authoriser on ``store``, with the site's global numbers and tariffs from
    ``globals_source`` (read from the database each time, or cached)."""
    site = settings.site
    return Authoriser(
        store,
        globals_source,
        billing=billing_policy(settings),
        policy=SitePolicy(
            region=site.region, emergency_calls_allowed=site.emergency_calls == "allow"
        ),
        lockout=lockout_policy(settings),
        pin_secret=settings.pin_keys,
        clock=utcnow,
    )
