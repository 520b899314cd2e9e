"""The daemon's sync of the cells' endpoints into Asterisk (services/cells_sync.py), with fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from callcontrol.domain.model import CellEndpoint
from callcontrol.services.cells_sync import CellsSync, keep_syncing

A = CellEndpoint("A1-01", "A1-01", "callcontrol", "0" * 32)
B = CellEndpoint("A1-02", "A1-02", "callcontrol", "1" * 32)


class Cells:
    """The database's side: a version and the enabled endpoints."""

    def __init__(self, *endpoints: CellEndpoint) -> None:
        self.version_no = 1
        self.enabled = list(endpoints)
        self.reads = 0

    def change(self, *endpoints: CellEndpoint) -> None:
        self.version_no += 1
        self.enabled = list(endpoints)

    async def version(self) -> int:
        return self.version_no

    async def endpoints(self) -> tuple[int, list[CellEndpoint]]:
        self.reads += 1
        return self.version_no, list(self.enabled)


class Asterisk:
    """The file Asterisk reads and its reloads; ``fail`` makes the next reloads fail."""

    def __init__(self) -> None:
        self.file: tuple[str, ...] | None = None
        self.loaded: tuple[str, ...] | None = None
        self.reloads = 0
        self.fail = 0

    def write(self, endpoints: Sequence[CellEndpoint]) -> bool:
        if any(e.sip_username.startswith("-") for e in endpoints):
            raise ValueError("unsafe name")
        text = tuple(sorted(e.sip_username for e in endpoints))
        changed, self.file = text != self.file, text
        return changed

    async def reload(self) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("Unable to connect to remote asterisk")
        self.reloads += 1
        self.loaded = self.file


def make(*endpoints: CellEndpoint) -> tuple[Cells, Asterisk, CellsSync]:
    cells, ast = Cells(*endpoints), Asterisk()
    return cells, ast, CellsSync(cells, ast.write, ast.reload)


async def test_first_tick_writes_and_reloads_then_nothing_until_a_change() -> None:
    cells, ast, sync = make(A)
    assert await sync.tick() is True
    assert ast.loaded == ("A1-01",) and ast.reloads == 1
    assert await sync.tick() is False and cells.reads == 1  # one row read, no reload
    cells.change(A, B)
    assert await sync.tick() is True
    assert ast.loaded == ("A1-01", "A1-02") and ast.reloads == 2
    cells.change(B)  # A disabled
    await sync.tick()
    assert ast.loaded == ("A1-02",)


async def test_a_change_that_leaves_the_file_alone_reloads_nothing() -> None:
    cells, ast, sync = make(A)
    await sync.tick()
    cells.change(A)  # a wing renamed, say: the version moved, the endpoints did not
    assert await sync.tick() is True
    assert ast.reloads == 1 and sync.synced == cells.version_no


async def test_a_failed_reload_is_tried_again_at_the_next_tick() -> None:
    cells, ast, sync = make(A)
    await sync.tick()
    cells.change(A, B)
    ast.fail = 1
    with pytest.raises(RuntimeError):
        await sync.tick()
    assert ast.loaded == ("A1-01",)  # written, not loaded yet
    assert await sync.tick() is True
    assert ast.loaded == ("A1-01", "A1-02")


async def test_an_endpoint_that_cannot_be_written_keeps_the_file_and_waits_for_a_change() -> None:
    cells, ast, sync = make(A)
    await sync.tick()
    cells.change(A, CellEndpoint("X", "-bad", "callcontrol", "2" * 32))
    assert await sync.tick() is False
    assert ast.file == ("A1-01",) and await sync.tick() is False
    cells.change(B)
    await sync.tick()
    assert ast.loaded == ("A1-02",)


async def test_keep_syncing_survives_failures_and_logs_them_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cells, ast, sync = make(A)
    ast.fail = 5
    task = asyncio.create_task(keep_syncing(sync, poll_s=0.001))
    try:
        for _ in range(2000):
            if ast.loaded == ("A1-01",):
                break
            await asyncio.sleep(0.001)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert ast.loaded == ("A1-01",)
    warnings = [r for r in caplog.records if "cells sync failed" in r.getMessage()]
    assert len(warnings) == 1
