"""Tools the example workflows call."""

from __future__ import annotations

from tether import tool


@tool
async def add_one(n: int) -> int:
    """n + 1."""
    return n + 1


@tool
async def double(n: int) -> int:
    """2n."""
    return 2 * n


@tool
async def label(n: int) -> str:
    """A word for n."""
    return "big" if n > 3 else "small"


@tool
async def pay(amount: int) -> str:
    """Pay ``amount`` (the example's side effect is its answer)."""
    return f"paid {amount}"


@tool
async def refund(amount: int) -> str:
    """Give ``amount`` back."""
    return f"refunded {amount}"
