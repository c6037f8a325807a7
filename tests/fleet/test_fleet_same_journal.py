"""The same journal wherever a step runs (I11): the same workflows, run on the in-process pool
and on a real ``tether worker`` process, leave the same records, field for field, once the
per-run fields (times, durations) are set aside. One case per kind of outcome: a value, an
exception (raised on the event loop and in a worker thread), a timeout and an output msgpack
cannot encode; every failure also keeps the tool's traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import msgspec
import pytest
from outcome_tools import CASES, TOOLS

from tether import JournalEntry, Runtime
from tether.fleet.transport import ZmqFleet
from tether.ir import compile_yaml_text
from tether.runtime.records import NodeFailed

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: Bound on every wait; each is for an event, polled every POLL_SECS.
DEADLINE = 30.0
WORKER_ID = "w-same-journal"
POLL_SECS = 0.01
#: Fields that say when and how fast, not what happened.
PER_RUN_FIELDS = frozenset({"at_ms", "duration_ms", "not_before_ms", "worker_id"})

T = TypeVar("T")


async def eventually(check: Callable[[], T | None], what: str) -> T:
    with anyio.move_on_after(DEADLINE):
        while not (found := check()):
            await anyio.sleep(POLL_SECS)
        return found
    raise AssertionError(f"gave up after {DEADLINE:g}s waiting for {what}")


@pytest.fixture
def worker_log(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "worker.err"


@asynccontextmanager
async def tether_worker(endpoint: str, stderr: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A ``tether worker`` process serving ``outcome_tools``, connected before this yields."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    argv = [
        sys.executable, "-m", "tether.cli", "worker", "--engine", endpoint,
        "--modules", "outcome_tools", "--worker-id", WORKER_ID,
        "--connect-timeout", str(DEADLINE),
    ]  # fmt: skip
    with stderr.open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:

        def connected() -> bool:
            return "worker_connected" in stderr.read_text() or proc.poll() is not None

        await eventually(connected, "the worker to connect")
        assert proc.poll() is None, f"worker exited: {stderr.read_text()}"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=DEADLINE)


async def run_cases(rt: Runtime) -> dict[str, list[JournalEntry]]:
    """Every case to its end on ``rt``, under the same execution ids; their journals."""
    for name, text in CASES.items():
        wf = rt.register(compile_yaml_text(text, f"{name}.yaml"))
        await rt.start(wf, {}, execution_id=f"same-{name}")
    journals = {}
    for name in CASES:
        await rt.wait(f"same-{name}", timeout=DEADLINE)
        journals[name] = await rt.journal(f"same-{name}")
    return journals


def normalized(journal: list[JournalEntry]) -> list[dict[str, Any]]:
    """Each record as plain data, without the fields that say when and how fast."""
    out = []
    for entry in journal:
        fields = msgspec.to_builtins(entry.record)
        out.append(
            {"seq": entry.seq} | {k: v for k, v in fields.items() if k not in PER_RUN_FIELDS}
        )
    return out


async def test_a_step_leaves_the_same_records_embedded_and_on_a_worker_process_I11(
    tmp_path: Path, worker_log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'embedded.db'}", tools=TOOLS) as rt:
        embedded = await run_cases(rt)
    fleet = ZmqFleet("tcp://127.0.0.1:0")
    async with Runtime(
        f"sqlite:///{tmp_path / 'fleet.db'}",
        tools=TOOLS,  # to bind arguments: with no in-process workers, the engine runs none
        transports=[fleet],
        max_concurrency=0,
    ) as rt:
        caplog.clear()  # the embedded run's lines: its failures ran on the local pool
        caplog.set_level(logging.INFO, logger="tether")
        async with tether_worker(fleet.endpoint, worker_log):
            remote = await run_cases(rt)
    # The engine's lifecycle lines name the worker that ran each failed attempt.
    lines = [(r.getMessage(), getattr(r, "fields", {})) for r in caplog.records]
    assert any(e == "worker_joined" and f["worker_id"] == WORKER_ID for e, f in lines)
    failed = [f for e, f in lines if e == "node_failed"]
    assert failed and all(f["worker_id"] == WORKER_ID for f in failed)
    assert {f["execution_id"] for f in failed} >= {"same-raises", "same-times-out"}

    for name in CASES:
        here, there = normalized(embedded[name]), normalized(remote[name])
        assert len(here) == len(there), (name, here, there)
        for mine, theirs in zip(here, there, strict=True):
            assert mine == theirs, name
    # What the cases came to, so the comparison above compared the outcomes meant.
    ends = {name: journal[-1].type for name, journal in embedded.items()}
    assert ends == {
        "succeeds": "execution_completed",
        "raises": "execution_failed",
        "raises-in-thread": "execution_failed",
        "times-out": "execution_failed",
        "unserializable": "execution_failed",
    }
    failures = {
        name: [e.record for e in journal if isinstance(e.record, NodeFailed)]
        for name, journal in remote.items()
    }
    described = {
        name: [(f.error_type, f.retryable, f.error) for f in found]
        for name, found in failures.items()
    }
    assert described == {
        "succeeds": [],
        "raises": [("ValueError", True, "ValueError: boom")] * 2,
        "raises-in-thread": [("KeyError", True, "KeyError: 'gone'")] * 2,
        "times-out": [("TimeoutError", True, "tool 'stall' timed out after 0.3s")] * 2,
        "unserializable": [
            (
                "UnserializableOutput",
                False,
                "tool 'opaque' returned a value msgpack cannot encode: "
                "Encoding objects of type object is unsupported",
            )
        ],
    }
    # The traceback came over the wire, innermost frame last.
    for name, frame in [("raises", "in _deeper"), ("raises-in-thread", "in explode_in_thread")]:
        tb = failures[name][0].traceback
        assert tb.startswith("Traceback (most recent call last):"), tb
        assert frame in tb.splitlines()[-3], tb
    assert all(f.traceback == "" for f in failures["times-out"] + failures["unserializable"])
