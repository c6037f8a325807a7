"""The full-disk test's workflow: one trivial tool step, run in the engine's own pool."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import anyio

from tether.runtime.tools import tool

#: A file outside the full filesystem; ``gated`` returns once it exists.
GATE_ENV: Final = "TETHER_TEST_GATE"
GATED_ID: Final = "disk-gated"
GATED_YAML: Final = f"""
workflow:
  id: {GATED_ID}
  version: "1"
  state_schema:
    x: {{type: integer, default: 0}}
nodes:
  hold: {{type: tool, tool: gated, input: {{x: $x}}, output_key: x, next: after}}
  after: {{type: tool, tool: bump, input: {{x: $x}}, output_key: x, next: end}}
"""

WORKFLOW_ID: Final = "disk-fill"
WORKFLOW_YAML: Final = f"""
workflow:
  id: {WORKFLOW_ID}
  version: "1"
  state_schema:
    x: {{type: integer, default: 0}}
    pad: {{type: string, default: ""}}
nodes:
  bump: {{type: tool, tool: bump, input: {{x: $x}}, output_key: x, next: end}}
"""


@tool
async def bump(x: int) -> int:
    """``x + 1``: enough for a run to write a few turns."""
    return x + 1


@tool(inline=False)
async def gated(x: int) -> int:
    """Returns ``x + 10`` once the gate file exists: the test fills the disk meanwhile, so
    this step's completion is the append that finds the disk full."""
    gate = Path(os.environ[GATE_ENV])
    while not gate.exists():  # the gate is opened by the test, after the disk is full
        await anyio.sleep(0.01)
    return x + 10
