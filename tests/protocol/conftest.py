"""Fixtures shared by the protocol tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.protocol.ami_peer import ScriptedAmi


@pytest.fixture
async def ami() -> AsyncIterator[ScriptedAmi]:
    """A scripted AMI server on a loopback port of its own, for one test."""
    server = ScriptedAmi()
    await server.start()
    yield server
    await server.stop()
