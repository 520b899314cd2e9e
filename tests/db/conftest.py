"""The database tests' helpers: the CLI run in-process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine
from callcontrol.cli import main
from tests.conftest import TEST_PIN_SECRET

TABLES = (m.Cell, m.Prisoner, m.Contact, m.ContactChange, m.GlobalNumber)


@dataclass
class Result:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.status == 0, self.err
        return json.loads(self.out)


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def __call__(self, *argv: str, stdin: str | None = None) -> Result:
        """Run the command; ``stdin`` is its standard input (a PIN for --pin-stdin)."""
        self.capsys.readouterr()
        saved = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            status = main(list(argv))
        finally:
            sys.stdin = saved
        out, err = self.capsys.readouterr()
        return Result(status, out, err)

    def ok(self, *argv: str, stdin: str | None = None) -> Result:
        result = self(*argv, stdin=stdin)
        assert result.status == 0, result.err
        assert result.err == ""
        return result

    def query(self, statement: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = make_engine(self.url)
            try:
                async with engine.connect() as conn:
                    return list((await conn.execute(statement)).all())
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def counts(self) -> dict[str, int]:
        return {
            t.__tablename__: self.query(select(func.count()).select_from(t))[0][0] for t in TABLES
        }


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_database")


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CALLCONTROL_") and not name.startswith("CALLCONTROL_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Cli:
    clean_environment(monkeypatch)
    monkeypatch.setenv("CALLCONTROL_DATABASE_URL", db_url)
    monkeypatch.setenv("CALLCONTROL_SECURITY_PIN_SECRET", TEST_PIN_SECRET)
    monkeypatch.setenv("CALLCONTROL_BASE_DIR", str(tmp_path))
    return Cli(db_url, capsys)
