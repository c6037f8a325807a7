"""Model calls through the engine against the same calls made directly: what the engine adds
to each call, in latency and in CPU, with 1 and 50 in flight.

    python -m benchmarks agents [--calls 1000] [--in-flight 1,50] [--chain 10] [--rounds 3]
    python -m benchmarks agents --quick          # a small size (the smoke test's)

The model is the fake provider (``tether.testing.fake_models``, OpenAI wire format, one
scripted answer for every call, HTTP/1.1 keep-alive) in a process of its own, so this
process's CPU is the caller's alone. Each round measures, against the same server:

- ``direct``: the call as a program makes it without Tether: one ``httpx.AsyncClient`` (with
  httpx's default limits, as the engine's own client has them) POSTs the body the engine sends
  (checked against the engine's journal) and reads the answer's text; ``in_flight`` loops.
- ``engine 1-call``: a workflow of one ``type: model`` node run by ``tether.Runtime`` on a
  SQLite file (durability ``full`` by default), ``in_flight`` runs at once; one call per run,
  so the run's start and end are in each call's figures.
- ``engine chain``: a chain of ``--chain`` model nodes, ``in_flight`` runs at once; a call's
  latency is its run's latency divided by the chain's length (the run's start and end spread
  over its calls).

Prints, for each in-flight level, medians over rounds: p50/p95 latency per call, the CPU of
this process per call (the SQLite writer's thread included) and of the server per call, the
engine's added p50 latency (engine - direct) and its ratios to the direct figures of the same
invocation; then whether the target (under 1 ms p50 added per call) is met.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, cast

import anyio
import httpx
import msgspec

from benchmarks.chain import cpu_meter
from benchmarks.machine import banner, describe
from tether import Runtime
from tether.agents.kinds import AgentKinds
from tether.ir import compile_yaml_text
from tether.ir.types import Workflow
from tether.persistence.contract import Durability
from tether.runtime.internals import runtime_internals

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: The target from the issue: the engine adds under this much p50 latency to a model call.
TARGET_ADDED_MS: Final = 1.0

KEY: Final = "bench-key"
MODEL: Final = "gpt-4o-mini"
SYSTEM: Final = "You answer in one word."
PROMPT: Final = "Say ok to {name}."
NAME: Final = "the benchmark"
ANSWER: Final = "ok"

#: The fake provider, run in a process of its own: one answer for every call, keep-alive.
SERVE: Final = """
import sys
from tether.testing.fake_models import FakeModelServer, FakeReply

reply = FakeReply(sys.argv[1], input_tokens=20, output_tokens=1)
with FakeModelServer(lambda _: reply, api_key=sys.argv[2], keep_alive=True) as server:
    print(server.url, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""


class FakeProvider:
    """The fake model server in a child process; its CPU time is read from /proc."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, ANSWER, KEY],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError("the fake model server did not start")

    @property
    def chat_url(self) -> str:
        return f"{self.url}/v1/chat/completions"

    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{self.url}/v1"}

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (-1 where /proc is missing)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return -1.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def fake_provider() -> Iterator[FakeProvider]:
    provider = FakeProvider()
    try:
        yield provider
    finally:
        provider.stop()


def request_body() -> dict[str, Any]:
    """What the engine sends for one model node of :func:`model_chain` (checked against its
    journal before the first round)."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": PROMPT.format(name=NAME)},
    ]
    return {"model": MODEL, "messages": messages}


def model_chain(length: int) -> str:
    """A workflow of ``length`` model nodes one after another, as YAML."""
    prompt = PROMPT.format(name="{{ state.name }}")
    lines = [
        f'workflow: {{id: model-chain-{length}, version: "1"}}',
        f"models:\n  fast: {{provider: openai, model: {MODEL}}}",
        "nodes:",
    ]
    for i in range(length):
        after = f"m{i + 1}" if i + 1 < length else "end"
        lines.append(
            f'  m{i}: {{type: model, model: fast, system: "{SYSTEM}", prompt: "{prompt}",'
            f" output_key: answer, next: {after}}}"
        )
    return "\n".join(lines) + "\n"


async def keep_going(
    total: int, in_flight: int, one: Callable[[], Awaitable[None]], latencies: list[float]
) -> None:
    """Run ``one`` ``total`` times, ``in_flight`` at once, timing each."""
    remaining = total

    async def loop() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - t0)

    async with anyio.create_task_group() as tg:
        for _ in range(in_flight):
            tg.start_soon(loop)


async def measure_direct(provider: FakeProvider, calls: int, in_flight: int) -> dict[str, Any]:
    """The call without Tether: one keep-alive ``httpx.AsyncClient``, ``in_flight`` loops."""
    body = request_body()
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(timeout=60) as http:

        async def call() -> None:
            resp = await http.post(
                provider.chat_url, content=msgspec.json.encode(body), headers=headers
            )
            resp.raise_for_status()
            answer = msgspec.json.decode(resp.content)["choices"][0]["message"]["content"]
            if answer != ANSWER:
                raise RuntimeError(f"direct: the model answered {answer!r}")

        await keep_going(in_flight * 2, in_flight, call, [])  # connections open, code warm
        return await _timed(provider, calls, calls, in_flight, call)


async def measure_engine(
    provider: FakeProvider, db: Path, runs: int, in_flight: int, length: int, durability: Durability
) -> dict[str, Any]:
    """``runs`` runs of a chain of ``length`` model nodes through ``tether.Runtime``."""
    kinds = AgentKinds(env=provider.env())
    async with Runtime(f"sqlite:///{db}", durability=durability, node_kinds=kinds) as rt:
        wf = rt.register(compile_yaml_text(model_chain(length), "model-chain.yaml"))
        await runtime_internals(rt).persist(wf)
        await _check_engine_sends_the_direct_body(rt, wf)

        async def run() -> None:
            result = await (await rt.start(wf, {"name": NAME})).result()
            if result.get("answer") != ANSWER:
                raise RuntimeError(f"engine: the run ended with {result!r}")

        await keep_going(in_flight * 2, in_flight, run, [])
        return await _timed(provider, runs, runs * length, in_flight, run)


async def _check_engine_sends_the_direct_body(rt: Runtime, wf: Workflow) -> None:
    """The direct baseline must send what the engine sends: compare with the journal."""
    run = await rt.start(wf, {"name": NAME})
    await run.result()
    records = [e.record for e in await rt.journal(run.id) if e.type == "node_scheduled"]
    sent = cast(dict[str, Any], records[0].input)  # type: ignore[attr-defined]
    expected = request_body()
    if sent["messages"] != expected["messages"] or sent["provider_model"] != expected["model"]:
        raise RuntimeError(f"the engine sends {sent!r}, the direct baseline {expected!r}")


async def _timed(
    provider: FakeProvider,
    units: int,
    calls: int,
    in_flight: int,
    one: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """Time ``units`` runs of ``one`` (each making ``calls / units`` model calls)."""
    latencies: list[float] = []
    per_unit = calls // units
    server_before = provider.cpu_seconds()
    with cpu_meter() as cpu:
        await keep_going(units, in_flight, one, latencies)
    server_cpu = provider.cpu_seconds() - server_before
    per_call = sorted(x / per_unit for x in latencies)
    return {
        "in_flight": in_flight,
        "calls": calls,
        "seconds": cpu["wall"],
        "calls_per_s": calls / cpu["wall"],
        "p50_ms": statistics.median(per_call) * 1000,
        "p95_ms": per_call[min(len(per_call) - 1, int(len(per_call) * 0.95))] * 1000,
        "cpu_us": cpu["process"] / calls * 1e6,
        "cpu_loop_us": cpu["thread"] / calls * 1e6,
        "server_cpu_us": server_cpu / calls * 1e6 if server_before >= 0 else None,
    }


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, with the spread of p50 latency."""
    out: dict[str, Any] = {k: _median(rows, k) for k in rows[0] if k != "in_flight"}
    out["in_flight"] = rows[0]["in_flight"]
    p50s = [r["p50_ms"] for r in rows]
    out["p50_spread_ms"] = max(p50s) - min(p50s)
    return out


def compare(engine: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """The engine's figures against the direct ones of the same invocation."""
    added = engine["p50_ms"] - direct["p50_ms"]
    return {
        "added_p50_ms": added,
        "added_p95_ms": engine["p95_ms"] - direct["p95_ms"],
        "target_met": added < TARGET_ADDED_MS,
        "added_cpu_us": engine["cpu_us"] - direct["cpu_us"],
        "p50_ratio": engine["p50_ms"] / direct["p50_ms"],
        "p95_ratio": engine["p95_ms"] / direct["p95_ms"],
        "cpu_ratio": engine["cpu_us"] / direct["cpu_us"],
        "throughput_ratio": engine["calls_per_s"] / direct["calls_per_s"],
    }


def run_all(
    levels: list[int], calls: int, chain: int, rounds: int, durability: Durability
) -> list[dict[str, Any]]:
    """For each level, ``rounds`` rounds of direct, engine 1-call and engine chain."""
    out = []
    with tempfile.TemporaryDirectory() as tmp, fake_provider() as provider:
        for k in levels:
            n = calls if k > 1 else max(chain, calls // 4)
            rows: dict[str, list[dict[str, Any]]] = {"direct": [], "engine_1": [], "chain": []}
            for i in range(rounds):
                rows["direct"].append(anyio.run(measure_direct, provider, n, k))
                db = Path(tmp) / f"one-{k}-{i}.db"
                rows["engine_1"].append(
                    anyio.run(measure_engine, provider, db, n, k, 1, durability)
                )
                if chain > 1:
                    db = Path(tmp) / f"chain-{k}-{i}.db"
                    runs = max(k, n // chain)
                    rows["chain"].append(
                        anyio.run(measure_engine, provider, db, runs, k, chain, durability)
                    )
            direct = summarize(rows["direct"])
            level: dict[str, Any] = {"in_flight": k, "direct": direct}
            for name in ("engine_1", "chain"):
                if rows[name]:
                    level[name] = summarize(rows[name]) | compare(summarize(rows[name]), direct)
            out.append(level)
    return out


HEAD: Final = (
    f"  {'per call':<16} {'calls':>6} {'calls/s':>8} {'p50 ms':>8} {'(spread)':>9} {'p95 ms':>8}"
    f" {'cpu us':>7} {'(loop)':>7} {'server cpu us':>14}"
)


def _line(label: str, r: dict[str, Any]) -> str:
    server = "n/a" if r["server_cpu_us"] is None else f"{r['server_cpu_us']:.0f}"
    return (
        f"  {label:<16} {r['calls']:6d} {r['calls_per_s']:8.0f} {r['p50_ms']:8.2f}"
        f" ({r['p50_spread_ms']:6.2f}) {r['p95_ms']:8.2f} {r['cpu_us']:7.0f}"
        f" ({r['cpu_loop_us']:5.0f}) {server:>14}"
    )


def _added(r: dict[str, Any]) -> str:
    verdict = "under target" if r["target_met"] else "OVER target"
    return (
        f"  {'  added':<16} {'':6} {'':8} {r['added_p50_ms']:+8.2f} {'':9}"
        f" {r['added_p95_ms']:+8.2f} {r['added_cpu_us']:+7.0f}   {verdict}\n"
        f"  {'  ratio':<16} {'':6} {r['throughput_ratio']:8.2f} {r['p50_ratio']:8.2f} {'':9}"
        f" {r['p95_ratio']:8.2f} {r['cpu_ratio']:7.2f}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per measurement")
    parser.add_argument("--in-flight", default="1,50")
    parser.add_argument("--chain", type=int, default=10, help="model nodes per chained run")
    parser.add_argument("--durability", default="full", choices=("full", "normal"))
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    parser.add_argument("--quick", action="store_true", help="a small size: 60 calls, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.rounds, args.chain = 60, 1, min(args.chain, 5)
    levels = [int(x) for x in args.in_flight.split(",")]
    durability = cast(Durability, args.durability)
    machine = describe()
    met: list[bool] = []
    print(
        f"agents: model calls, engine vs direct httpx, median of {args.rounds} rounds"
        f" · durability={durability} · {banner(machine)}"
    )
    results = run_all(levels, args.calls, args.chain, args.rounds, durability)
    verdicts = []
    for level in results:
        k = level["in_flight"]
        print(f"in_flight={k}\n{HEAD}")
        print(_line("direct httpx", level["direct"]))
        for name, label in (("engine_1", "engine 1-call"), ("chain", f"engine chain{args.chain}")):
            if name in level:
                print(_line(label, level[name]))
                print(_added(level[name]))
                added = level[name]["added_p50_ms"]
                verdicts.append(f"{label} @{k}: {added:+.2f} ms")
                met.append(level[name]["target_met"])
    verdict = "met" if met and all(met) else "NOT met"
    target = f"under {TARGET_ADDED_MS:g} ms p50 added per call"
    print(f"target ({target}): {verdict} · {'; '.join(verdicts)}")
    return {
        "scenario": "agents",
        "machine": machine,
        "durability": durability,
        "chain": args.chain,
        "target_added_p50_ms": TARGET_ADDED_MS,
        "target_met": all(met),
        "results": results,
    }


if __name__ == "__main__":
    main()
