"""The chaos scenario's verdict: every run's final state and journal, read over the REST API,
against what the workflow computes and what the side-effect log says really ran."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from benchmarks.chaos_tools import expected

TERMINAL = ("completed", "failed", "cancelled")
#: Reads of the journal at once during the check.
READERS = 16

Handout = tuple[str, str]  # (attempt, dispatch), as the side-effect log writes them


@dataclass
class RunJournal:
    """What the engine says of one run: its view, and per node its hand-outs and completions."""

    view: dict[str, Any] | None  # None: the engine does not know the run (lost)
    handouts: dict[str, set[Handout]] = field(default_factory=dict)
    completions: Counter[str] = field(default_factory=Counter)
    #: Every record as (engine wall time, type, node, attempt, dispatch, worker), for
    #: ``--keep``'s post-mortem (``benchmarks.chaos_tail``).
    events: list[tuple[float, str, str, int, int, str]] = field(default_factory=list)


async def read_run(client: httpx.AsyncClient, run_id: str) -> RunJournal:
    resp = await client.get(f"/executions/{run_id}")
    if resp.status_code == 404:
        return RunJournal(None)
    resp.raise_for_status()
    journal = RunJournal(resp.json())
    events = await client.get(f"/executions/{run_id}/events")
    events.raise_for_status()
    for event in events.json()["events"]:
        kind = event["kind"]
        at = parse_time(event["created_at"]) if event["created_at"] else 0.0
        journal.events.append((
            at, kind["type"], str(kind.get("node_id", "")), int(kind.get("attempt") or 0),
            int(kind.get("dispatch") or 0), str(kind.get("worker_id") or ""),
        ))  # fmt: skip
        if kind["type"] == "node_scheduled":
            handout = (str(kind["attempt"]), str(kind["dispatch"]))
            journal.handouts.setdefault(kind["node_id"], set()).add(handout)
        elif kind["type"] == "node_completed":
            journal.completions[kind["node_id"]] += 1
    return journal


async def read_all(url: str, run_ids: list[str]) -> dict[str, RunJournal]:
    out: dict[str, RunJournal] = {}
    limiter = anyio.Semaphore(READERS)

    async def one(client: httpx.AsyncClient, run_id: str) -> None:
        async with limiter:
            out[run_id] = await read_run(client, run_id)

    async with (
        httpx.AsyncClient(base_url=url, timeout=30.0) as client,
        anyio.create_task_group() as tg,
    ):
        for run_id in run_ids:
            tg.start_soon(one, client, run_id)
    return out


def read_effects(path: Path) -> Counter[tuple[str, str, str, str]]:
    """(run, node, attempt, dispatch) -> how many times the tool really ran for it."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            run, node, attempt, dispatch, _pid = line.split()
            counts[run, node, attempt, dispatch] += 1
    return counts


def side_effects(
    journals: dict[str, RunJournal], effects: Counter[tuple[str, str, str, str]]
) -> dict[str, int]:
    """Nodes whose tool ran more than once, and whether each extra run is explained: it ran
    for a hand-out (attempt, dispatch) the run's journal holds, once per hand-out."""
    per_node: Counter[tuple[str, str]] = Counter()
    for (run, node, _a, _d), n in effects.items():
        per_node[run, node] += n
    out = {"nodes_repeated": 0, "extra_runs": 0, "explained": 0, "unexplained": 0}
    for (run, node), n in per_node.items():
        if n < 2:
            continue
        out["nodes_repeated"] += 1
        out["extra_runs"] += n - 1
        journal = journals.get(run)
        handouts = journal.handouts.get(node, set()) if journal else set()
        mine = {(a, d): c for (r, nd, a, d), c in effects.items() if (r, nd) == (run, node)}
        ok = all(c == 1 and h in handouts for h, c in mine.items())
        out["explained" if ok else "unexplained"] += n - 1
    return out


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def verdict(
    submitted: dict[str, tuple[int, float]],
    journals: dict[str, RunJournal],
    effects: Counter[tuple[str, str, str, str]],
    last_fault: float,
    real_time: Callable[[float], float] = lambda t: t,
) -> dict[str, Any]:
    """Counts of lost, stuck, doubled and wrong runs, repeated side effects, latencies.

    ``real_time`` maps the engine's wall time (a run's ``completed_at``) to the driver's: the
    identity unless the engine's clock was made to jump."""
    lost, stuck, doubled, wrong = [], [], [], []
    latencies, done_at = [], []
    for run_id, (x0, t_submit) in submitted.items():
        journal = journals[run_id]
        if journal.view is None:
            lost.append(run_id)
            continue
        view = journal.view
        if any(n > 1 for n in journal.completions.values()):
            doubled.append(run_id)
        if view["status"] not in TERMINAL:
            stuck.append(run_id)
            continue
        output = view.get("output") or {}
        if view["status"] != "completed" or output.get("x") != expected(x0):
            wrong.append(f"{run_id} ({view['status']}: {view.get('error') or output.get('x')})")
        if view.get("completed_at"):
            done_at.append(real_time(parse_time(view["completed_at"])))
            latencies.append(done_at[-1] - t_submit)
    return {
        "runs": len(submitted),
        "lost": lost,
        "stuck": stuck,
        "doubled": doubled,
        "wrong": wrong,
        "side_effects": side_effects(journals, effects),
        "latency_s": quantiles(latencies),
        "last_fault_to_all_done_s": max(done_at) - last_fault if done_at else None,
    }


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive")
        if len(values) > 1
        else [values[0]] * 99
    )
    return {"p50": cuts[49], "p99": cuts[98], "max": max(values)}
