"""The live calls' services on the daemon's HTTP application: the console's sub-application
finds them through ``request.config_dict`` (app.py's build_http_server sets them)."""

from __future__ import annotations

from aiohttp import web

from callcontrol.services.browser_listen import BrowserListen
from callcontrol.services.live_feed import LiveFeed

BROWSER_LISTEN = web.AppKey("browser_listen", BrowserListen)
LIVE_FEED = web.AppKey("live_feed", LiveFeed)
