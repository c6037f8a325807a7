"""What ``tether inspect`` and ``tether run``/``watch`` print for a strategy agent's events
(``tether.server.strategy_events``): its rounds, verdicts and the limit that stopped it.

Example::

    strategy_line({"type": "critique", "score": 0.81, "passed": False, ...})
    # '✎ critique score=0.81 passed=false'
"""

from __future__ import annotations

import json
from typing import Any


def strategy_line(kind: dict[str, Any]) -> str | None:
    """The text after the node's name for a strategy event, or None for any other event."""
    kind_type = kind["type"]
    if kind_type == "strategy_iteration_started":
        return f"↻ {kind['strategy_node']} round {kind['iteration']}"
    if kind_type == "tool_called":
        return f"⚒ tool_called ({kind['strategy_node']})"
    if kind_type == "critique":
        verdict = next((k for k in ("passed", "settled") if k in kind), None)
        said = f" {verdict}={json.dumps(kind[verdict])}" if verdict else ""
        return f"✎ critique score={json.dumps(kind.get('score'))}{said}"
    if kind_type == "limit_reached":
        return f"! limit_reached {kind['limit']}: {kind['reason']}"
    return None
