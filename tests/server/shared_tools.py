"""Tools for the shared-engine process tests: each step appends to a side-effect log.

``TETHER_TEST_EFFECTS``: the log file (``start K TAG PID`` before, ``done K TAG PID`` after).
``TETHER_TEST_BLOCK_STEP``: a step number that never returns in this process (an engine that
is then SIGKILLed mid-step). ``TETHER_TEST_SLOW_STEP``: ``K:SECONDS``, a step that takes that
long here (an engine SIGSTOPped inside it, whose step returns once it is SIGCONTed).
"""

from __future__ import annotations

import os

import anyio

from tether import tool


def _log(what: str, k: int, tag: str) -> None:
    with open(os.environ["TETHER_TEST_EFFECTS"], "a") as f:
        f.write(f"{what} {k} {tag} {os.getpid()}\n")


@tool(name="effect_step")
async def effect_step(k: int, tag: str) -> int:
    _log("start", k, tag)
    if os.environ.get("TETHER_TEST_BLOCK_STEP") == str(k):
        await anyio.sleep_forever()
    slow = os.environ.get("TETHER_TEST_SLOW_STEP", "")
    if slow.partition(":")[0] == str(k):
        await anyio.sleep(float(slow.partition(":")[2]))
    _log("done", k, tag)
    return k
