"""An embedded runtime's metrics: its own registry, counting what its runs did."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tether import Runtime, tool
from tether.errors import RateLimited
from tether.runtime.metrics import runtime_metrics

FLOW = """
workflow: {id: metered, version: "1", start: first, state_schema: {n: {type: integer}}}
nodes:
  first: {type: tool, tool: plus_one, input: {n: $n}, output_key: n, next: limited}
  limited: {type: tool, tool: limited_once, input: {n: $n}, output_key: n, next: last}
  last:
    type: tool
    tool: fails_when_big
    input: {n: $n}
    output_key: n
    retry: {max_attempts: 2, backoff_initial_secs: 0.01}
    next: end
"""

_limited: set[int] = set()


@tool
async def plus_one(n: int) -> int:
    return n + 1


@tool
async def limited_once(n: int) -> int:
    """Rate limited the first time it sees ``n`` (the run parks once), then passes it on."""
    if n not in _limited:
        _limited.add(n)
        raise RateLimited(0, "429 from the provider")
    return n


@tool
async def fails_when_big(n: int) -> int:
    if n > 5:
        raise ValueError("too big")
    return n


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.anyio
async def test_an_embedded_runtime_counts_its_runs_in_its_own_registry(tmp_path: Path) -> None:
    tools = [plus_one, limited_once, fails_when_big]
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=tools) as rt:
        metrics = runtime_metrics(rt)
        assert runtime_metrics(rt) is metrics  # one per runtime
        (tmp_path / "flow.yaml").write_text(FLOW)
        wf = rt.register_yaml(tmp_path / "flow.yaml")
        ok = await rt.start(wf, input={"n": 0})
        bad = await rt.start(wf, input={"n": 10})
        assert (await ok.result())["n"] == 1
        with pytest.raises(Exception, match="too big"):
            await bad.result()
        got = samples((await metrics.scrape()).decode())

    # 3 steps each; both parked once; the bad run's last step failed twice (two attempts).
    assert got[("tether_executions_started_total", ())] == 2
    assert got[("tether_executions_ended_total", (("status", "completed"),))] == 1
    assert got[("tether_executions_ended_total", (("status", "failed"),))] == 1
    assert got[("tether_executions", (("status", "completed"),))] == 1
    assert got[("tether_executions", (("status", "failed"),))] == 1
    assert got[("tether_executions", (("status", "running"),))] == 0
    finished = {o: got[("tether_steps_finished_total", (("outcome", o),))] for o in
                ("completed", "failed", "parked", "cancelled")}  # fmt: skip
    assert finished == {"completed": 5, "failed": 2, "parked": 2, "cancelled": 0}
    assert got[("tether_parks_total", ())] == 2
    assert got[("tether_step_duration_seconds_count", ())] == 7  # completed + failed
    # 7 hand-outs created leased to the pool, and the 2 parked ones granted again.
    assert got[("tether_steps_scheduled_total", ())] == 7
    assert got[("tether_leases_granted_total", ())] == 9
    assert got[("tether_journal_commits_total", ())] > 0
    assert got[("tether_journal_rows_total", ())] >= got[("tether_journal_commits_total", ())]
    assert got[("tether_workers", ())] == 1  # the in-process pool
    # Not in prometheus_client's global registry: two runtimes would not mix.
    assert REGISTRY.get_sample_value("tether_executions_started_total") is None
