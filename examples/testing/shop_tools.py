"""The tools of the example payment workflow, and a fake bank that remembers every charge.

The bank takes an idempotency key (the reservation), as real payment APIs do: a charge the
runtime runs again, because the process died while it was in flight, charges once.
"""

from __future__ import annotations

import itertools
from collections import Counter

from tether import tool


class FakeBank:
    """Charges by idempotency key; ``calls`` counts every request, ``charged`` the money."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter()
        self.charged: dict[str, int] = {}
        self._ids = itertools.count(1)

    def reserve(self, amount: int) -> str:
        return f"rsv-{next(self._ids)}-{amount}"

    def charge(self, key: str, amount: int) -> str:
        self.calls[key] += 1
        self.charged.setdefault(key, amount)  # the same key twice: one charge
        return f"tx-{key}"


BANK = FakeBank()


@tool
async def reserve_funds(amount: int) -> str:
    """Hold the amount on the card; returns the reservation id."""
    return BANK.reserve(amount)


@tool
async def charge_card(reservation: str, amount: int) -> str:
    """Capture a reservation; the reservation is the idempotency key."""
    return BANK.charge(reservation, amount)


@tool
async def send_receipt(transaction: str) -> bool:
    """Email the receipt."""
    return transaction.startswith("tx-")


@tool
async def search(query: str) -> list[str]:
    """Search the shop's catalogue."""
    return [f"{query} (in stock)"]


@tool
async def delete_db() -> str:
    """Registered with the runtime, never on the agent's list: it must never run."""
    raise AssertionError("delete_db ran")
