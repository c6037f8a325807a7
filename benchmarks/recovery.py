"""Crash recovery after SIGKILL: Tether, DBOS and LangGraph on the same scenario.

    python -m benchmarks.recovery [--runs 200] [--steps 10] [--step-ms 50] [--kill-after 2.0]
                                  [--rounds 3] [--systems tether,dbos,langgraph,langgraph-async]

For each system and round, on a fresh directory: a child process (``benchmarks.recovery_<lib>
start``) starts ``--runs`` runs at once, each a chain of ``--steps`` steps; every step appends
``run step`` to a side-effect log, then sleeps ``--step-ms``. ``--kill-after`` seconds after
every run has begun its first step, the driver kills the child with SIGKILL, asks the library
what it had persisted (``inspect``), then starts ``resume``: the library recovers on open
(Tether's ``Runtime``, DBOS's ``launch()``) or the program resumes each unfinished thread from
its last checkpoint (LangGraph, ``ainvoke(None, config)``), and the child reports once every
run is done. From the two logs and the persisted set the driver counts steps re-executed,
persisted steps re-executed (must be 0) and runs lost (must be 0).

The side-effect log is a plain ``O_APPEND`` write of one line per step, no fsync: SIGKILL
kills the process, not the kernel, so the page cache keeps every write that returned.

Exits nonzero if Tether loses a run, re-runs a persisted step or fails to recover at all;
peers missing the mark are reported, not fatal.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Each system: the child module that runs it, the import it needs, and extra child arguments.
SYSTEMS: dict[str, tuple[str, str, list[str]]] = {
    "tether": ("benchmarks.recovery_tether", "tether", []),
    "dbos": ("benchmarks.recovery_dbos", "dbos", []),
    "langgraph": (
        "benchmarks.recovery_langgraph",
        "langgraph.checkpoint.sqlite",
        ["--durability", "sync"],
    ),
    # LangGraph's default durability: checkpoints are written in the background.
    "langgraph-async": (
        "benchmarks.recovery_langgraph",
        "langgraph.checkpoint.sqlite",
        ["--durability", "async"],
    ),
}

Key = tuple[str, int]  # (run id, step index)


# -- the protocol the child programs share ----------------------------------------------------


def run_ids(runs: int) -> list[str]:
    """The runs' ids (Tether execution ids, DBOS workflow ids, LangGraph thread ids)."""
    return [f"run{i:04d}" for i in range(runs)]


def child_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("phase", choices=["start", "resume", "inspect"])
    parser.add_argument("--db", type=Path, required=True, help="the library's database file")
    parser.add_argument("--log", type=Path, required=True, help="the side-effect log")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--deadline", type=float, default=120.0, help="resume gives up after")
    return parser


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout: how a child reports to the driver."""
    print(json.dumps({"event": event, **fields}), flush=True)


class Effects:
    """The side-effect log and the start phase's progress signals, shared by a child's steps.

    Steps may run on several threads (DBOS), hence the lock.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._begun: set[str] = set()
        self._finished: set[str] = set()
        self.runs = 0
        self.t0 = time.perf_counter()

    def open(self, path: Path, runs: int) -> None:
        # O_APPEND: each line lands whole at the end, whatever thread writes it.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.runs = runs

    def step(self, run: str, index: int) -> None:
        """Record that step ``index`` of ``run`` is executing (the side effect)."""
        assert self._fd is not None, "Effects.open() first"
        os.write(self._fd, f"{run} {index}\n".encode())
        if index == 0:
            with self._lock:
                self._begun.add(run)
                if len(self._begun) == self.runs:
                    emit("ready", t=time.perf_counter() - self.t0)

    def run_finished(self, run: str) -> None:
        with self._lock:
            self._finished.add(run)
            if len(self._finished) == self.runs:
                emit("finished", t=time.perf_counter() - self.t0)


EFFECTS = Effects()


def read_effects(path: Path) -> Counter[Key]:
    """How many times each (run, step) appears in a side-effect log."""
    counts: Counter[Key] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            run, index = line.split()
            counts[(run, int(index))] += 1
    return counts


# -- the driver -------------------------------------------------------------------------------


@dataclass
class Child:
    """A child process whose JSON stdout lines are collected by a thread."""

    proc: subprocess.Popen[str]
    started: float
    lines: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)

    @classmethod
    def spawn(cls, module: str, args: list[str], stderr: Path) -> Child:
        started = time.monotonic()
        with stderr.open("a") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        child = cls(proc, started)
        threading.Thread(target=child._read, daemon=True).start()
        return child

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                event = json.loads(line)
                event["at"] = time.monotonic()
                self.lines.put(event)
        self.lines.put({"event": "exit", "at": time.monotonic()})

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next line of kind ``event``; RuntimeError if the child exits or times out."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"no {event!r} within {timeout:.0f} s") from None
            if got["event"] == event:
                return got
            if got["event"] == "exit":
                code = self.proc.wait()
                raise RuntimeError(f"the child exited ({code}) before {event!r}")

    def saw(self, event: str) -> bool:
        """Whether a line of kind ``event`` has already arrived (consumes the queue)."""
        found = False
        while not self.lines.empty():
            found = found or self.lines.get_nowait()["event"] == event
        return found


@dataclass
class Options:
    runs: int
    steps: int
    step_ms: float
    kill_after: float
    timeout: float
    kill_at_steps: int | None = None


def one_round(system: str, opts: Options, tmp: Path) -> dict[str, Any]:
    """Start, kill, inspect, resume one system in ``tmp``; the counts and times of the round."""
    module, _, extra = SYSTEMS[system]
    db, stderr = tmp / "db.sqlite", tmp / "stderr.txt"
    start_log, resume_log = tmp / "effects-start.log", tmp / "effects-resume.log"

    def args(phase: str, log: Path) -> list[str]:
        return [phase, "--db", str(db), "--log", str(log), "--runs", str(opts.runs),
                "--steps", str(opts.steps), "--step-ms", str(opts.step_ms),
                "--deadline", str(opts.timeout), *extra]  # fmt: skip

    children: list[Child] = []

    def spawn(phase: str, log: Path) -> Child:
        children.append(Child.spawn(module, args(phase, log), stderr))
        return children[-1]

    try:
        child = spawn("start", start_log)
        ready = child.expect("ready", opts.timeout)
        wait_for_kill_point(ready["at"], start_log, opts)
        finished_before_kill = child.saw("finished")
        os.kill(child.proc.pid, signal.SIGKILL)
        child.proc.wait()
        inspected = spawn("inspect", resume_log)
        persisted_line = inspected.expect("persisted", opts.timeout)
        inspected.proc.wait(timeout=opts.timeout)  # gone before the timed restart begins
        resumed = spawn("resume", resume_log)
        done = resumed.expect("done", opts.timeout + 60)
        resumed.proc.wait(timeout=60)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        tail = stderr.read_text()[-3000:] if stderr.exists() else ""
        return {"system": system, "error": f"{exc}\n{tail}"}
    finally:
        for c in children:  # a child that failed or hangs must not outlive its round
            if c.proc.poll() is None:
                c.proc.kill()
            c.proc.wait()

    persisted = {(run, int(index)) for run, index in persisted_line["steps"]}
    before, after = read_effects(start_log), read_effects(resume_log)
    return {
        "system": system,
        "spawn_to_ready_s": ready["at"] - child.started,
        "finished_before_kill": finished_before_kill,
        "unfinished_at_kill": persisted_line["unfinished"],
        "steps_before_kill": sum(before.values()),
        "persisted_before_kill": len(persisted),
        "restart_to_done_s": done["at"] - resumed.started,
        "open_to_done_s": done["open_to_done_s"],
        **{k: v for k, v in done.items() if k.endswith("_s") and k != "open_to_done_s"},
        **effect_counts(before, after, persisted, opts),
        "started_over": done.get("started_over", 0),
        "runs_lost": opts.runs - done["completed"],
    }


def wait_for_kill_point(ready_at: float, start_log: Path, opts: Options) -> None:
    """Sleep until the kill: ``kill_after`` s after every run began, or, with ``kill_at_steps``,
    once that many step side effects are in the log (the same progress for every system)."""
    if opts.kill_at_steps is None:
        time.sleep(max(0.0, ready_at + opts.kill_after - time.monotonic()))
        return
    deadline = time.monotonic() + opts.timeout
    while time.monotonic() < deadline:
        with start_log.open("rb") as log:
            if log.read().count(b"\n") >= opts.kill_at_steps:
                return
        time.sleep(0.005)
    raise RuntimeError(f"the log never reached {opts.kill_at_steps} steps")


def effect_counts(
    before: Counter[Key], after: Counter[Key], persisted: set[Key], opts: Options
) -> dict[str, int]:
    """Re-executions from the two logs: a step that ran n times was re-executed n - 1 times."""
    total = before + after
    every = {(run, i) for run in run_ids(opts.runs) for i in range(opts.steps)}
    return {
        "steps_after_restart": sum(after.values()),
        "re_executed": sum(n - 1 for n in total.values()),
        "persisted_re_executed": sum(n for key, n in after.items() if key in persisted),
        "never_ran": len(every - set(total)),
    }


def summarize(system: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the times, worst case of the must-be-zero counts, over the rounds."""
    ok = [r for r in rounds if "error" not in r]
    out: dict[str, Any] = {
        "system": system,
        "rounds": rounds,
        "failed_rounds": len(rounds) - len(ok),
    }
    if not ok:
        return out
    for key in ("restart_to_done_s", "open_to_done_s"):
        values = [r[key] for r in ok]
        out[key] = statistics.median(values)
        out[key.replace("_s", "_spread_s")] = max(values) - min(values)
    for key in ("steps_before_kill", "persisted_before_kill", "re_executed", "unfinished_at_kill"):
        out[key] = statistics.median(r[key] for r in ok)
    for key in ("persisted_re_executed", "runs_lost", "never_ran"):
        out[key] = max(r[key] for r in ok)
    return out


def print_table(results: Iterable[dict[str, Any]], opts: Options) -> None:
    when = (
        f"once {opts.kill_at_steps} steps had run"
        if opts.kill_at_steps is not None
        else f"{opts.kill_after:g} s after every run began"
    )
    print(
        f"{opts.runs} runs x {opts.steps} steps of {opts.step_ms:g} ms, SIGKILL {when};"
        " medians (spread), worst case of the must-be-0 columns"
    )
    head = (
        f"{'system':16s} {'restart->done':>17s} {'open->done':>9s} {'unfinished':>10s}"
        f" {'ran':>5s} {'persisted':>9s} {'re-run':>6s} {'persisted re-run':>16s}"
        f" {'runs lost':>9s}"
    )
    print(head)
    for r in results:
        if "skipped" in r:
            print(f"{r['system']:16s} skipped: {r['skipped']}")
            continue
        if "restart_to_done_s" not in r:
            print(f"{r['system']:16s} failed: {r['rounds'][0].get('error', '?').splitlines()[0]}")
            continue
        spread = r["restart_to_done_spread_s"]
        print(
            f"{r['system']:16s} {r['restart_to_done_s']:7.2f} s ({spread:4.2f})"
            f" {r['open_to_done_s']:7.2f} s {r['unfinished_at_kill']:10.0f}"
            f" {r['steps_before_kill']:5.0f} {r['persisted_before_kill']:9.0f}"
            f" {r['re_executed']:6.0f} {r['persisted_re_executed']:16d} {r['runs_lost']:9d}"
        )
        if r["failed_rounds"]:
            print(f"{'':16s} {r['failed_rounds']} round(s) failed, see the JSON")
        if r["unfinished_at_kill"] == 0:
            print(
                f"{'':16s} every run had finished before the kill: nothing was left to recover"
                " (try --kill-at-steps)"
            )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--kill-after", type=float, default=2.0,
                        help="seconds after every run has begun its first step")  # fmt: skip
    parser.add_argument(
        "--kill-at-steps",
        type=int,
        help="instead: kill once this many steps have run (e.g. half of them)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--timeout", type=float, default=120.0, help="per phase, seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    opts = Options(
        args.runs, args.steps, args.step_ms, args.kill_after, args.timeout, args.kill_at_steps
    )

    results = []
    for system in args.systems.split(","):
        if system not in SYSTEMS:
            parser.error(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")
        if not _importable(SYSTEMS[system][1]):
            results.append({"system": system, "skipped": f"{SYSTEMS[system][1]} not installed"})
            print(f"{system}: {SYSTEMS[system][1]} is not installed (pip install -e '.[bench]')")
            continue
        rounds = []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix=f"recovery-{system}-") as tmp:
                rounds.append(one_round(system, opts, Path(tmp)))
        results.append(summarize(system, rounds))
    print_table(results, opts)
    report = {"scenario": "recovery", "options": vars(opts), "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    problems = tether_problems(results)
    for problem in problems:
        print(f"TETHER FAILED: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(1)
    return report


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def tether_problems(results: list[dict[str, Any]]) -> list[str]:
    """What would be a real bug in Tether: a failed round, a lost run, a persisted step rerun."""
    problems = []
    for r in results:
        if r["system"] != "tether" or "skipped" in r:
            continue
        for n, rnd in enumerate(r["rounds"], 1):
            if "error" in rnd:
                problems.append(f"round {n}: {rnd['error']}")
                continue
            for key in ("runs_lost", "persisted_re_executed", "never_ran"):
                if rnd[key]:
                    problems.append(f"round {n}: {key} = {rnd[key]}")
    return problems


if __name__ == "__main__":
    main()
