"""Tools for the redaction test (``tether dev --modules redaction_tools``): one hands its
payload back into state, one fails its first attempt with the payload in the error message
(so the PII reaches a ``node_failed`` record, its log line and its span's status)."""

from __future__ import annotations

from typing import Any

from tether import tool

_failed: set[str] = set()


@tool
async def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


@tool
async def flaky(payload: dict[str, Any], key: str) -> str:
    if key not in _failed:
        _failed.add(key)
        raise ValueError(f"could not reach the customer: {sorted(payload.values())}")
    return f"reached: {' / '.join(str(v) for v in payload.values())}"
