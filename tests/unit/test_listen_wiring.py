"""The daemon's wiring of listening from the browser (app.py): the AudioSocket server on
loopback only, and a clear error when its address is taken."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from callcontrol.adapters.ami.channels import ChannelTracker
from callcontrol.app import build_browser_listen, listening_lifetime
from callcontrol.config import ConfigError, ListenSettings, Settings


def settings(**listen: Any) -> Settings:
    return replace(Settings(), listen=ListenSettings(**listen))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "localhost", "asterisk.lan"])
def test_an_audiosocket_host_that_is_not_a_loopback_address_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        build_browser_listen(settings(audiosocket_host=host), None, ChannelTracker())  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "127.0.0.2"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    _, server = build_browser_listen(settings(audiosocket_host=host), None, ChannelTracker())  # type: ignore[arg-type]
    assert server.host == host


async def test_a_taken_port_stops_the_start_with_a_one_line_reason() -> None:
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        browser, server = build_browser_listen(
            settings(audiosocket_port=port),
            None,  # type: ignore[arg-type]
            ChannelTracker(),
        )
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            await anext(listening_lifetime(browser, server, None))  # type: ignore[arg-type]
    finally:
        taken.close()
        await taken.wait_closed()
