"""The daemon keeps its cache of the global numbers and tariffs current (app.py's wiring of
adapters/db/globals_cache.py): loaded at start, reloaded after a change made by another
process, here plain SQL on the daemon's SQLite."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from callcontrol.adapters.db.engine import make_engine

from .ami_peer import ScriptedAmi
from .daemon_proc import prepare_database, running_daemon, write_config


async def test_the_running_daemon_reloads_after_a_change(tmp_path: Path) -> None:
    ami = ScriptedAmi()
    await ami.start()
    config = write_config(tmp_path, ami.port)
    await prepare_database(tmp_path)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/cc.sqlite3")
    try:
        async with running_daemon(config) as daemon:
            await daemon.wait_for_line(r"globals cache: version 1 loaded: 0 global number")
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE tariffs SET rate = 1 WHERE destination_class = 'short'")
                )
            await daemon.wait_for_line(r"globals cache: version 2 loaded: 0 global number")
    finally:
        await engine.dispose()
        await ami.stop()
