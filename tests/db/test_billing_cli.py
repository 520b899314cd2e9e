"""The `account` and `tariff` commands, run in-process against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from callcontrol.adapters.db import ledger
from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.tables import Account, LedgerEntry, TariffRow
from callcontrol.cli.billing import rate_arg
from tests.db.conftest import Cli, Result


@pytest.fixture
def prison(cli: Cli) -> Cli:
    """One cell A1-01 with prisoner A1234BC in it."""
    cli.ok("cell", "add", "A1-01")
    cli.ok(
        "prisoner", "add", "A1234BC", "--name", "Ann Example", "--pin-stdin", "--cell", "A1-01",
        stdin="1234\n",
    )  # fmt: skip
    return cli


def refused(result: Result, *words: str) -> None:
    """Exit status 2, one line on stderr, nothing on stdout."""
    assert result.status == 2, result
    assert result.out == ""
    assert result.err.startswith("callcontrol: error: ") and result.err.count("\n") == 1, result
    for word in words:
        assert word in result.err, result


def money(cli: Cli) -> tuple[Any, ...]:
    """Everything the money commands may write: entries, accounts, tariffs."""
    return (
        cli.query(select(LedgerEntry.id, LedgerEntry.amount_pence).order_by(LedgerEntry.id)),
        cli.query(select(Account.prisoner_id, Account.balance_pence, Account.reserved_pence)),
        cli.query(select(TariffRow.destination_class, TariffRow.rate, TariffRow.weekend_rate)),
    )


def entries(cli: Cli) -> int:
    return int(cli.query(select(func.count()).select_from(LedgerEntry))[0][0])


def charged_call(cli: Cli, reserve: int, charge: int, talk_seconds: int) -> None:
    """A call of A1234BC to +442079460000 that reserved, then was charged."""

    async def run() -> None:
        engine = make_engine(cli.url)
        try:
            async with session_factory(engine).begin() as s:
                p = await s.scalar(select(m.Prisoner).where(m.Prisoner.prison_number == "A1234BC"))
                assert p is not None and p.cell_id is not None
                d = m.CallDecision(handset="A1-01", dialled="0", outcome="allow", reason="ok")
                s.add(d)
                await s.flush()
                call = m.Call(
                    decision_id=d.id, prisoner_id=p.id, cell_id=p.cell_id,
                    number="+442079460000", channel="PJSIP/A1-01-1", uniqueid="1.1",
                    started_at=datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
                    ended_at=datetime(2026, 11, 28, 12, 5, tzinfo=UTC),  # one live call at most
                )  # fmt: skip
                s.add(call)
                await s.flush()
                assert await ledger.reserve(
                    s, p.id, call.id, reserve, max_seconds=600, rate=310,
                    destination_class="uk_landline", rounding="per_second", free=False,
                )  # fmt: skip
                await ledger.settle(s, call.id, charge, talk_seconds=talk_seconds)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_topup_then_retry_is_applied_once(prison: Cli) -> None:
    out = prison.ok("account", "topup", "A1234BC", "500", "--reference", "RCPT-1", "--by", "ops")
    assert out.out == "topped up 500p (£5.00) for A1234BC: balance 500p (£5.00)\n"
    again = prison.ok("account", "topup", "A1234BC", "500", "--reference", "RCPT-1")
    assert again.out.startswith("already applied: top-up RCPT-1 of 500p (£5.00)")
    assert entries(prison) == 1
    data = prison.ok("account", "topup", "A1234BC", "500", "--reference", "RCPT-1", "--json")
    assert data.json()["already_applied"] is True and data.json()["balance_pence"] == 500
    data = prison.ok("account", "topup", "A1234BC", "1234", "--reference", "RCPT-2", "--json")
    assert data.json() == {
        "prisoner": "A1234BC", "amount_pence": 1234, "reference": "RCPT-2",
        "entry_id": data.json()["entry_id"], "already_applied": False,
        "balance_pence": 1734, "reserved_pence": 0, "available_pence": 1734,
    }  # fmt: skip
    [(by,)] = prison.query(select(LedgerEntry.created_by).where(LedgerEntry.reference == "RCPT-1"))
    assert by == "ops"


def test_show(prison: Cli) -> None:
    assert prison.ok("account", "show", "A1234BC", "--json").json() == {
        "prisoner": "A1234BC", "balance_pence": 0, "reserved_pence": 0, "available_pence": 0,
    }  # fmt: skip
    prison.ok("account", "topup", "A1234BC", "1205", "--reference", "R1")
    text = prison.ok("account", "show", "A1234BC").out.splitlines()
    assert text == [
        "prisoner A1234BC",
        "balance    1205p  £12.05",
        "reserved      0p  £0.00",
        "available  1205p  £12.05",
    ]


def test_statement_shows_call_charges(prison: Cli) -> None:
    assert prison.ok("account", "statement", "A1234BC").out == "no entries for A1234BC\n"
    prison.ok("account", "topup", "A1234BC", "500", "--reference", "R1")
    charged_call(prison, reserve=200, charge=31, talk_seconds=65)
    lines = prison.ok("account", "statement", "A1234BC").out.splitlines()
    assert lines[0].split() == [
        "WHEN", "KIND", "AMOUNT", "BALANCE_AFTER", "REFERENCE", "NUMBER", "STARTED_AT", "TALK",
        "CHARGE",
    ]  # fmt: skip
    assert lines[1].split()[1:] == ["topup", "£5.00", "£5.00", "R1", "-", "-", "-", "-"]
    assert lines[2].split()[1:] == [
        "charge", "-£0.31", "£4.69", "call", "1", "+442079460000", "2026-11-28T12:00:00+00:00",
        "1:05", "£0.31",
    ]  # fmt: skip
    rows = prison.ok("account", "statement", "A1234BC", "--json").json()
    assert [(r["kind"], r["amount_pence"], r["balance_after_pence"]) for r in rows] == [
        ("topup", 500, 500),
        ("charge", -31, 469),
    ]
    assert (rows[1]["number"], rows[1]["talk_seconds"], rows[1]["charge_pence"]) == (
        "+442079460000", 65, 31,
    )  # fmt: skip
    assert prison.ok("account", "show", "A1234BC", "--json").json()["available_pence"] == 469


def test_statement_lists_connected_calls_that_cost_nothing(prison: Cli) -> None:
    """A call that rounds to 0p (or is free) moves no money, so it has no ledger entry: the
    statement lists it all the same, with its talk time, between the entries it came between."""
    prison.ok("account", "topup", "A1234BC", "500", "--reference", "R1")
    charged_call(prison, reserve=200, charge=0, talk_seconds=4)  # 4 s at 3.1p/min: 0p
    charged_call(prison, reserve=200, charge=31, talk_seconds=65)
    rows = prison.ok("account", "statement", "A1234BC", "--json").json()
    assert [(r["kind"], r["amount_pence"], r["balance_after_pence"]) for r in rows] == [
        ("topup", 500, 500),
        ("call", 0, 500),
        ("charge", -31, 469),
    ]
    free = rows[1]
    assert (free["id"], free["number"], free["talk_seconds"], free["charge_pence"]) == (
        None, "+442079460000", 4, 0,
    )  # fmt: skip
    assert free["reference"] == f"call {free['call_id']}"
    text = prison.ok("account", "statement", "A1234BC").out.splitlines()
    assert text[2].split()[1:] == [
        "call", "£0.00", "£5.00", "call", str(free["call_id"]), "+442079460000",
        "2026-11-28T12:00:00+00:00", "0:04", "£0.00",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("A1234BC", "0", "--reference", "R"), ("AMOUNT_PENCE", "above 0")),
        (("A1234BC", "-5", "--reference", "R"), ("AMOUNT_PENCE",)),
        (("A1234BC", "1.5", "--reference", "R"), ("AMOUNT_PENCE", "whole number")),
        (("A1234BC", "+5", "--reference", "R"), ("AMOUNT_PENCE",)),
        (("A1234BC", "1_000", "--reference", "R"), ("AMOUNT_PENCE",)),
        (("A1234BC", "£5", "--reference", "R"), ("AMOUNT_PENCE",)),
        (("A1234BC", "500"), ("--reference",)),
        (("A1234BC", "500", "--reference", " "), ("reference must not be empty",)),
        (("NOBODY", "500", "--reference", "R"), ("no prisoner",)),
        (("A1234BC", "4501", "--reference", "R"), ("over the limit of £50.00",)),
        (("A1234BC", "600", "--reference", "FIRST"), ("'FIRST' was already used",)),
    ],
)
def test_topup_refusals_write_nothing(prison: Cli, argv: tuple[str, ...], words: Any) -> None:
    prison.ok("account", "topup", "A1234BC", "500", "--reference", "FIRST")
    before = money(prison)
    refused(prison("account", "topup", *argv), *words)
    assert money(prison) == before


def test_cap_from_the_settings(prison: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCONTROL_BILLING_MAX_BALANCE_PENCE", "1000")
    prison.ok("account", "topup", "A1234BC", "1000", "--reference", "R1")
    refused(prison("account", "topup", "A1234BC", "1", "--reference", "R2"), "£10.00")
    assert entries(prison) == 1


def test_show_and_statement_of_nobody(prison: Cli) -> None:
    refused(prison("account", "show", "NOBODY"), "no prisoner")
    refused(prison("account", "statement", "NOBODY"), "no prisoner")


def test_tariff_set_and_list(prison: Cli) -> None:
    rows = prison.ok("tariff", "list", "--json").json()
    assert {r["destination_class"]: r["rate"] for r in rows} == {
        "uk_landline": 310, "uk_mobile": 688, "international": 2500, "short": 0, "other": 688,
    }  # fmt: skip
    out = prison.ok("tariff", "set", "uk_mobile", "--rate", "6.5", "--weekend-rate", "3.1").out
    assert out == "tariff uk_mobile: 6.50p/min, weekends 3.10p/min\n"
    data = prison.ok("tariff", "set", "uk_landline", "--rate", "3.09", "--json", "--by", "x").json()
    assert (data["rate"], data["weekend_rate"], data["rate_per_minute"]) == (309, None, "3.09p/min")
    stored = dict((c, (r, w)) for c, r, w in money(prison)[2])
    assert stored["uk_mobile"] == (650, 310) and stored["uk_landline"] == (309, None)
    text = prison.ok("tariff", "list").out.splitlines()
    assert text[0].split() == ["DESTINATION_CLASS", "RATE_PER_MINUTE", "WEEKEND_RATE_PER_MINUTE"]
    assert "uk_mobile          6.50p/min        3.10p/min" in text
    [(by,)] = prison.query(
        select(TariffRow.updated_by).where(TariffRow.destination_class == "uk_landline")
    )
    assert by == "x"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("uk_mobile", "--rate", "6.555"), ("--rate", "at most 2 decimal places")),
        (("uk_mobile", "--rate", "-1"), ("--rate",)),
        (("uk_mobile", "--rate", "1e2"), ("--rate",)),
        (("uk_mobile", "--rate", "3."), ("--rate",)),
        (("uk_mobile", "--rate", "NaN"), ("--rate",)),
        (("uk_mobile", "--rate", "abc"), ("--rate",)),
        (("uk_mobile", "--rate", "1", "--weekend-rate", "-0.5"), ("--weekend-rate",)),
        (("uk_mobile",), ("--rate",)),
        (("uk_mobil", "--rate", "1"), ("no destination class 'uk_mobil'",)),
    ],
)
def test_tariff_refusals_write_nothing(prison: Cli, argv: tuple[str, ...], words: Any) -> None:
    before = money(prison)
    refused(prison("tariff", "set", *argv), *words)
    assert money(prison) == before


@pytest.mark.parametrize(
    ("text", "hundredths"),
    [("3.1", 310), ("6.88", 688), ("0", 0), ("0.01", 1), ("25", 2500), ("0.1", 10), ("07.5", 750)],
)
def test_rates_are_parsed_exactly(text: str, hundredths: int) -> None:
    assert rate_arg(text) == hundredths


def test_help(cli: Cli) -> None:
    for argv in (("account",), ("account", "topup"), ("tariff",), ("tariff", "set")):
        result = cli(*argv, "--help")
        assert result.status == 0 and "usage: callcontrol" in result.out
    assert "already applied" in " ".join(cli("account", "topup", "--help").out.split())
    assert "2 decimal places" in " ".join(cli("tariff", "set", "--help").out.split())
    assert "account" in cli("--help").out and "tariff" in cli("--help").out
