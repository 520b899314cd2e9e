"""Money rules, in whole pence: what a ledger entry may do to an account, and pounds for
people. Plain functions of plain values, shared by the operator's acts (services/accounts.py)
and the settlement of calls (adapters/db/ledger.py)."""

from __future__ import annotations


def pounds(pence: int) -> str:
    """Pence as pounds for people: 1234 -> "£12.34", -5 -> "-£0.05"."""
    sign = "-" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100}.{abs(pence) % 100:02d}"


def posting_problem(
    balance: int, reserved: int, amount: int, max_balance: int | None = None
) -> str | None:
    """Why an entry of ``amount`` pence may not be applied to an account holding ``balance``
    with ``reserved`` held for calls in progress, or None when it may: never below zero,
    never below what calls in progress hold, and a credit never over ``max_balance``."""
    new = balance + amount
    if new < 0:
        return f"refused: {amount}p would take the balance of {pounds(balance)} below zero"
    if new < reserved:
        return (
            f"refused: {amount}p would take the balance of {pounds(balance)} below the "
            f"{pounds(reserved)} held for a call in progress"
        )
    if max_balance is not None and amount > 0 and new > max_balance:
        return (
            f"refused: {amount}p would take the balance of {pounds(balance)} to {pounds(new)}, "
            f"over the limit of {pounds(max_balance)}"
        )
    return None
