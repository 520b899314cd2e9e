"""A recording's spool file is ingested once MixMonitor has written it, not while it is empty."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcontrol.services.recording_jobs import wait_until_written


async def test_waits_for_a_file_that_is_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "1.raw"

    async def mixmonitor() -> None:
        await asyncio.sleep(0.15)
        path.write_bytes(b"")  # opened, nothing yet
        for _ in range(3):
            await asyncio.sleep(0.1)
            with path.open("ab") as f:
                f.write(b"\0" * 320)

    writer = asyncio.create_task(mixmonitor())
    assert await wait_until_written(path, steady_s=0.25, limit_s=5) is True
    assert path.stat().st_size == 960  # it waited for the growth to stop
    await writer


async def test_gives_up_on_a_file_that_never_comes(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await wait_until_written(tmp_path / "none.raw", steady_s=0.05, limit_s=0.3) is False
    assert 0.3 <= loop.time() - started < 2


async def test_an_empty_file_is_not_written(tmp_path: Path) -> None:
    (tmp_path / "0.raw").write_bytes(b"")
    assert await wait_until_written(tmp_path / "0.raw", steady_s=0.05, limit_s=0.2) is False
