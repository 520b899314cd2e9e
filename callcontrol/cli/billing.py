"""Operator commands on money: `account` (top-ups, balances, statements) and `tariff`.

Amounts are whole pence on the command line and in --json output; the text output shows
pounds too. Tariff rates are given in pence per minute with at most two decimal places (3.1,
6.88) and stored exactly, in hundredths of a penny. Each act is services/accounts.py's (the
same as the console's and the API's); a refusal is one line with exit status 2, and nothing
is written.
"""

from __future__ import annotations

import argparse
import re
from decimal import Decimal
from typing import Any

from callcontrol.cli import Parents, command, group, operator, table
from callcontrol.cli.common import EXIT_OK, emit
from callcontrol.config import Settings
from callcontrol.domain.money import pounds
from callcontrol.domain.tariffs import Tariff
from callcontrol.services.views import Money, StatementLine

Args = argparse.Namespace

PENCE = re.compile(r"[0-9]+")
RATE = re.compile(r"([0-9]{1,6})(?:\.([0-9]{1,2}))?")


def done(args: Args, data: Any, text: str) -> int:
    emit(args, data, text)
    return EXIT_OK


# --- arguments ---------------------------------------------------------------------------------


def pence_arg(value: str) -> int:
    """A positive whole number of pence: digits only (no sign, point or spaces)."""
    if not PENCE.fullmatch(value) or int(value) == 0:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number of pence above 0 (500 is £5.00)"
        )
    return int(value)


def rate_arg(value: str) -> int:
    """Pence per minute, at most 2 decimal places, as hundredths of a penny: "3.1" -> 310."""
    if not RATE.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a rate in pence per minute with at most 2 decimal places "
            "(e.g. 3.1 or 6.88)"
        )
    return int(Decimal(value) * 100)  # exact: at most 2 decimal places


def per_minute(rate: int | None) -> str | None:
    """Hundredths of a penny per minute for people: 310 -> "3.10p/min"."""
    return None if rate is None else f"{rate // 100}.{rate % 100:02d}p/min"


def _money(b: Money) -> dict[str, Any]:
    return {
        "balance_pence": b.balance,
        "reserved_pence": b.reserved,
        "available_pence": b.available,
    }


# --- account -----------------------------------------------------------------------------------


async def account_topup(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        done_ = await services.accounts.topup(who_acts, args.prisoner, args.amount, args.reference)
    entry, money = done_.entry, done_.money
    amount = f"{entry.amount_pence}p ({pounds(entry.amount_pence)})"
    now = f"balance {money.balance}p ({pounds(money.balance)})"
    if done_.already_applied:
        text = f"already applied: top-up {entry.reference} of {amount} for {args.prisoner}; {now}"
    else:
        text = f"topped up {amount} for {args.prisoner}: {now}"
    data = {
        "prisoner": args.prisoner,
        "amount_pence": entry.amount_pence,
        "reference": entry.reference,
        "entry_id": entry.id,
        "already_applied": done_.already_applied,
    }
    return done(args, data | _money(money), text)


async def account_show(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        money = await services.accounts.balance(args.prisoner)
    width = len(str(money.balance))
    text = "\n".join(
        [f"prisoner {args.prisoner}"]
        + [
            f"{name:<9}  {pence:>{width}}p  {pounds(pence)}"
            for name, pence in (
                ("balance", money.balance),
                ("reserved", money.reserved),
                ("available", money.available),
            )
        ]
    )
    return done(args, {"prisoner": args.prisoner} | _money(money), text)


def _line(x: StatementLine) -> dict[str, Any]:
    """One line of a statement: a ledger entry, or (kind "call", no entry id) a connected call
    that cost nothing, shown with its talk time all the same."""
    e = x.entry
    talk = x.talk_seconds
    amount = 0 if e is None else e.amount_pence
    assert x.at is not None
    return {
        "id": None if e is None else e.id,
        "when": x.at.isoformat(timespec="seconds"),
        "kind": "call" if e is None else e.kind,
        "amount_pence": amount,
        "balance_after_pence": x.balance_after,
        "reference": f"call {x.call_id}" if e is None else e.reference,
        "by": None if e is None else e.created_by,
        "call_id": x.call_id,
        "number": x.number,
        "started_at": None if x.started_at is None else x.started_at.isoformat(timespec="seconds"),
        "talk_seconds": talk,
        "charge_pence": x.charge_pence,
        # for the text table only
        "amount": pounds(amount),
        "balance_after": pounds(x.balance_after),
        "talk": None if talk is None else f"{talk // 60}:{talk % 60:02d}",
        "charge": None if x.charge_pence is None else pounds(x.charge_pence),
    }


async def account_statement(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [_line(x) for x in await services.accounts.statement(args.prisoner)]
    columns = ("when", "kind", "amount", "balance_after", "reference", "number", "started_at")
    text = table(rows, (*columns, "talk", "charge"), f"no entries for {args.prisoner}")
    for r in rows:
        for key in ("amount", "balance_after", "talk", "charge"):
            del r[key]
    return done(args, rows, text)


# --- tariffs -----------------------------------------------------------------------------------


def _tariff(t: Tariff) -> dict[str, Any]:
    return {
        "destination_class": t.destination_class,
        "rate": t.rate,
        "weekend_rate": t.weekend_rate,
        "rate_per_minute": per_minute(t.rate),
        "weekend_rate_per_minute": per_minute(t.weekend_rate),
    }


async def tariff_set(args: Args, settings: Settings) -> int:
    who_acts = operator.actor(args, settings)
    async with operator.services(settings) as (services, _):
        t = await services.accounts.set_tariff(who_acts, args.cls, args.rate, args.weekend_rate)
    weekend = per_minute(t.weekend_rate) or "the same"
    text = f"tariff {t.destination_class}: {per_minute(t.rate)}, weekends {weekend}"
    return done(args, _tariff(t), text)


async def tariff_list(args: Args, settings: Settings) -> int:
    async with operator.services(settings) as (services, _):
        rows = [_tariff(t) for t in await services.accounts.tariffs()]
    columns = ("destination_class", "rate_per_minute", "weekend_rate_per_minute")
    return done(args, rows, table(rows, columns, "no tariffs"))


# --- the commands ------------------------------------------------------------------------------

PRISONER = (("prisoner",), {"metavar": "PRISONER", "help": "the prisoner's prison number"})
BY = (("--by",), {"metavar": "NAME", "help": "who makes the change, for the record (default: you)"})
RATE_HELP = "pence per minute, at most 2 decimal places: 3.1 is 3.1p a minute"

GROUPS = (
    ("account", "prisoners' money: top-ups, balances, statements",
     "Each prisoner's account, in pence. Every movement is an entry in an append-only ledger "
     "(the database refuses to change or remove one); the balance is their sum. Money held "
     "for a call in progress is 'reserved'; 'available' is what is left to spend."),
    ("tariff", "what calls cost, per destination class",
     "Call rates per destination class (uk_landline, uk_mobile, international, short, other), "
     "in pence per minute, with an optional weekend rate. Calls to privileged or free numbers "
     "are never charged."),
)  # fmt: skip

COMMANDS: tuple[tuple[str, str, Any, str, str, tuple[Any, ...]], ...] = (
    ("account", "topup", account_topup, "add money to a prisoner's account",
     "Credit AMOUNT_PENCE (a whole number: 500 is £5.00) to a prisoner's account. The "
     "reference (a receipt or transaction number) makes it safe to retry: a second top-up with "
     "the same reference is not applied again ('already applied'). Refused when the balance "
     "would go over [billing] max_balance_pence (default 5000, £50).",
     (PRISONER,
      (("amount",), {"metavar": "AMOUNT_PENCE", "type": pence_arg,
                     "help": "whole pence above 0, e.g. 500 for £5.00"}),
      (("--reference",), {"metavar": "REF", "required": True,
                          "help": "the payment's reference, unique to it (e.g. a receipt number)"}),
      BY)),
    ("account", "show", account_show, "show a prisoner's balance",
     "Show a prisoner's balance, the money reserved for a call in progress, and what is "
     "available, in pence and pounds.", (PRISONER,)),
    ("account", "statement", account_statement, "list a prisoner's ledger",
     "List every entry of a prisoner's ledger, oldest first: when, kind (topup, charge, refund, "
     "adjustment), amount and the balance after it; for call charges also the number called, "
     "when the call started, its talk time and its charge.", (PRISONER,)),
    ("tariff", "set", tariff_set, "change the rates of a destination class",
     "Set the rate of a destination class, in pence per minute with at most 2 decimal places "
     "(3.1 or 6.88; stored exactly). Without --weekend-rate, weekends cost the same. The rate "
     "at a call's start applies to the whole call.",
     ((("cls",), {"metavar": "CLASS", "help": "destination class, e.g. uk_mobile"}),
      (("--rate",), {"metavar": "R", "type": rate_arg, "required": True, "help": RATE_HELP}),
      (("--weekend-rate",), {"metavar": "W", "type": rate_arg,
                             "help": "Saturday and Sunday, in pence per minute (default: R)"}),
      BY)),
    ("tariff", "list", tariff_list, "list the tariffs",
     "List the destination classes and their rates, in pence per minute.", ()),
)  # fmt: skip


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `account` and `tariff` commands."""
    groups = {name: group(sub, name, help, description) for name, help, description in GROUPS}
    for group_name, name, handler, help, description, arguments in COMMANDS:
        parser = command(groups[group_name], name, parents, handler, help, description)
        for flags, options in arguments:
            parser.add_argument(*flags, **options)
