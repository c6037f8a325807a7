"""The checks the plugin adds to every test that uses ``tether_runtime``: nothing committed ran
again after a crash (I3), nothing ran before its hand-out was journaled (I1), and replaying
each journal rebuilds the live state (I2).

Example::

    problems = await runtime_problems(rt)          # [] when every rule held
    print(records_around(rt.committed, 7))          # the journal near position 7
"""

from __future__ import annotations

from collections.abc import Sequence

from tether.testing.life import Committed
from tether.testing.replay import ReplayMismatch, check_replay
from tether.testing.runtime_under_test import RuntimeUnderTest


async def runtime_problems(rt: RuntimeUnderTest) -> list[str]:
    """What broke a rule in this run of the test, each said in a line or a few."""
    problems: list[str] = []
    crash = rt.crash
    if crash is not None and len(rt.lives) > 1:
        after = rt.lives[-1].executor.started
        reran = sorted(w for w in crash.settled_before if after[w])
        problems += [
            f"{w} ran again after the crash, though its outcome was committed" for w in reran
        ]
    for life in rt.lives:
        problems += [
            f"{item} started in life {life.number} before its node_scheduled was committed"
            for item in life.executor.unjournaled
        ]
    problems += await replay_problems(rt)
    return problems


async def replay_problems(rt: RuntimeUnderTest) -> list[str]:
    """Replay each execution the live runtime holds and compare it with the live state."""
    runtime = rt.runtime
    problems = []
    offset = 0
    while rows := await runtime.store.list_executions(limit=500, offset=offset):
        offset += len(rows)
        for row in rows:
            if await runtime.live_state(row.execution_id) is None:
                continue  # finished in an earlier life, or passivated: nothing live to compare
            try:
                await check_replay(runtime, row.execution_id)
            except ReplayMismatch as exc:
                problems.append(str(exc))
    return problems


def records_around(committed: Sequence[Committed], position: int, span: int = 4) -> str:
    """The records committed just before and after ``position`` (across executions, in commit
    order), with the line where the crash cut."""
    lines = []
    first = max(0, position - span)
    for i, rec in enumerate(committed[first : position + span], start=first):
        if i == position:
            lines.append(f"  ---- crash at position {position}: what follows is recovery ----")
        lines.append(f"  {i:>4}  {rec.execution_id} #{rec.seq:<3} {rec.type:<22} life {rec.life}")
    if position >= len(committed):
        lines.append(f"  ---- crash at position {position} (nothing committed after it) ----")
    return "\n".join(lines)
