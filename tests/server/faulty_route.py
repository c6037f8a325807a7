"""Loaded by ``tether dev --modules tools,faulty_route`` in a test: ``GET /workers`` then
fails the way nobody foresaw, to see how an unexpected 500 is answered and logged."""

from __future__ import annotations

from typing import Any

from tether import tool
from tether.runtime.runtime import Runtime


def _fail(self: Runtime) -> list[dict[str, Any]]:
    raise ZeroDivisionError("planted by the test")


Runtime.workers = _fail  # type: ignore[method-assign]


@tool
def unused() -> None:
    """``--modules`` wants a tool in every module it loads."""
