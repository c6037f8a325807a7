"""Large values in a running engine (I9): step results, the run's input and the state go to
the artifact store and the journal holds references; the runtime sees values everywhere, so
replay from the start and from a snapshot gives the live state (I2), after a restart too; a
SIGKILL between the artifact's commit and its turn's, or after both, loses nothing and applies
nothing twice (I1, I4)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from artifact_crash_child import DOC, FLOW, make_tools

from tether import Runtime, WorkflowContext, step, tool, workflow
from tether.ir import compile_yaml_text
from tether.persistence.artifacts.spill import REF_MARKER
from tether.runtime.artifact_places import RECORD_PLACES, STATE_PLACES
from tether.runtime.records import Record
from tether.runtime.state import ExecutionState
from tether.testing.replay import check_replay

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


async def test_step_results_and_input_are_artifacts_and_replay_gives_the_live_state_I2_I9(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "rt.db", str(tmp_path / "log")
    seed = {"notes": "n" * 20_000, "small": 1}
    async with Runtime(f"sqlite:///{db}", tools=make_tools(log), snapshot_every=3) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "big.yaml"))
        run = await rt.start(wf, seed)
        result = await run.result()
        await check_replay(rt, run.id)  # from seq 1 and from the snapshot, against live
        stored = {e.type: e.record for e in await rt.stored_journal(run.id)}
        live = await rt.state(run.id)
    assert result["doc"] == DOC and result["size"] == len(DOC) and result["notes"] == seed["notes"]
    # The rows hold references: the step's output, the next hand-out's input, the input.
    assert not isinstance(stored["node_completed"].output, str)  # type: ignore[union-attr]
    payloads = rows(db, "SELECT type, length(payload), payload FROM journal")
    assert max(size for _, size, _ in payloads) < 1024
    assert {t for t, _, p in payloads if REF_MARKER in p} >= {
        "execution_started", "node_completed", "node_scheduled", "execution_completed"}  # fmt: skip
    assert max(size for (size,) in rows(db, "SELECT length(payload) FROM snapshots")) < 1024
    # Each value once, however many rows and snapshots reference it.
    assert sorted(size for (size,) in rows(db, "SELECT size FROM artifacts")) == [
        len(seed["notes"]) + 3,
        len(DOC) + 5,
    ]  # msgpack strings: a 3- or 5-byte head
    async with Runtime(f"sqlite:///{db}", tools=make_tools(log)) as rt:  # from the disk alone
        assert await rt.state(run.id) == live
        assert [e.record for e in await rt.journal(run.id)][-1].result == result  # type: ignore[union-attr]


async def test_values_under_the_threshold_or_with_artifacts_off_stay_inline(
    tmp_path: Path,
) -> None:
    db = tmp_path / "rt.db"
    async with Runtime(f"sqlite:///{db}", tools=make_tools(str(tmp_path / "log")),
                       artifact_threshold=None) as rt:  # fmt: skip
        wf = rt.register(compile_yaml_text(FLOW, "big.yaml"))
        await (await rt.start(wf, {})).result()
    assert rows(db, "SELECT count(*) FROM artifacts") == [(0,)]
    assert max(size for (size,) in rows(db, "SELECT length(payload) FROM journal")) > len(DOC)
    for bad, why in [(10, "at least 64 bytes"), ("8k", "an integer of bytes")]:
        with pytest.raises(ValueError, match=why):
            Runtime("memory://", artifact_threshold=bad)  # type: ignore[arg-type]


@tool
async def echo(text: str) -> str:
    return text


async def test_a_threshold_is_the_size_a_value_must_pass(tmp_path: Path) -> None:
    flow = compile_yaml_text(
        'workflow: {id: echo, version: "1"}\n'
        "nodes: {say: {type: tool, tool: echo, output_key: said, next: end}}\n",
        "echo.yaml",
    )
    db = tmp_path / "rt.db"
    async with Runtime(f"sqlite:///{db}", tools=[echo], artifact_threshold=1000) as rt:
        wf = rt.register(flow)
        for n in (900, 1100):
            run = await rt.start(wf, {"text": "t" * n})
            assert (await run.result())["said"] == "t" * n
            await check_replay(rt, run.id)
    sizes = sorted(size for (size,) in rows(db, "SELECT size FROM artifacts"))
    # 900 characters stay inline wherever they are; 1100 are one artifact; the first run's
    # result holds two 900s (1817 bytes, no part past 1000): one artifact as a whole.
    assert sizes == [1103, 1817]


def _field_type(owner: Any, name: str) -> Any:
    hints = get_type_hints(owner)
    return hints.get(name)


def _types_at(owner: Any, place: tuple[str, ...]) -> list[Any]:
    """The types a place leads to, through structs, dicts, tuples (array-like structs too)."""
    if not place:
        return [owner]
    step, rest = place[0], place[1:]
    origin = get_origin(owner)
    if origin is dict:
        return _types_at(get_args(owner)[1], rest) if step == "*" else []
    if origin is tuple:
        return _types_at(get_args(owner)[0], rest)
    if get_origin(owner) is not None and str(origin).endswith("Union"):
        return [t for arm in get_args(owner) for t in _types_at(arm, place)]
    if isinstance(owner, type) and hasattr(owner, "__struct_fields__"):
        fields = owner.__struct_fields__
        name = fields[int(step)] if step.isdigit() else step
        kind = _field_type(owner, name) if name in fields else None
        return [] if kind is None else _types_at(kind, rest)
    return [owner]


def test_values_become_references_only_where_the_type_takes_anything() -> None:
    """A row read as stored (an audit bundle) decodes: an extension object can only sit where
    the type is Any. Each place must reach at least one field, and only Any."""
    for place in RECORD_PLACES:
        found = [t for arm in get_args(Record) for t in _types_at(arm, place)]
        assert found and all(t is Any for t in found), (place, found)
    for place in STATE_PLACES:
        found = _types_at(ExecutionState, place)
        assert found and all(t is Any for t in found), (place, found)


@pytest.mark.parametrize("when", ["between", "after"])
async def test_sigkill_around_an_artifact_loses_nothing_and_applies_nothing_twice_I1_I4(
    tmp_path: Path, when: str
) -> None:
    db, log, execution_id = tmp_path / "rt.db", tmp_path / "log", f"big-{when}"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "artifact_crash_child.py"), str(db), when, execution_id,
         str(log)],
        cwd=HERE.parent.parent,
    )  # fmt: skip
    try:
        assert child.wait(timeout=60) == -signal.SIGKILL  # it killed itself at the point
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    before = rows(db, "SELECT type FROM journal ORDER BY seq")
    stored = rows(db, "SELECT digest FROM artifacts")
    assert len(stored) == 1  # the step's result, committed first either way
    if when == "between":  # the turn never happened: no row references the artifact yet
        assert ("node_completed",) not in before
    else:
        assert ("node_completed",) in before
    async with Runtime(f"sqlite:///{db}", tools=make_tools(str(log))) as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
        journal = [e.type for e in await rt.journal(execution_id)]
        assert (await rt.sweep_artifacts(min_age=0)).removed == ()  # all referenced now
    assert state.status == "completed"
    assert state.data["doc"] == DOC and state.data["size"] == len(DOC)
    assert journal.count("node_completed") == 2  # each step's outcome applied once
    assert rows(db, "SELECT digest FROM artifacts") == stored  # the re-run's result: the same
    calls = log.read_text().split()
    # Before the turn committed the step had not happened (it runs again); after, never again.
    assert calls == (["fetch", "fetch", "measure"] if when == "between" else ["fetch", "measure"])


@step
async def big_step(k: int) -> str:
    return f"{k:04d}" + "c" * 30_000


@workflow(id="big-code", version="1")
async def big_code(ctx: WorkflowContext, data: dict[str, Any]) -> int:
    parts = [await big_step(k) for k in range(4)]
    return sum(len(p) for p in parts)


async def test_a_code_first_runs_large_step_values_replay_from_snapshots_I2_I9(
    tmp_path: Path,
) -> None:
    db = tmp_path / "rt.db"
    async with Runtime(f"sqlite:///{db}", workflows=[big_code], snapshot_every=2) as rt:
        run = await rt.start(big_code, {})
        assert await run.result() == 4 * 30_004
        await check_replay(rt, run.id)
        live = await rt.state(run.id)
    assert max(size for (size,) in rows(db, "SELECT length(payload) FROM snapshots")) < 2048
    assert len(rows(db, "SELECT digest FROM artifacts")) == 4  # each step's value, once
    async with Runtime(f"sqlite:///{db}", workflows=[big_code]) as rt:
        assert await rt.state(run.id) == live


async def test_large_values_on_postgres_are_artifacts_and_replay_I2_I9(
    tmp_path: Path, postgres_url: str
) -> None:
    log = str(tmp_path / "log")
    async with Runtime(postgres_url, tools=make_tools(log), snapshot_every=3) as rt:
        run = await rt.start(rt.register(compile_yaml_text(FLOW, "big.yaml")), {})
        assert (await run.result())["size"] == len(DOC)
        await check_replay(rt, run.id)
        live = await rt.state(run.id)
        stored = [e.record for e in await rt.stored_journal(run.id)]
        assert not any(getattr(r, "output", None) == DOC for r in stored)
        assert len(await rt.store.list_artifacts()) == 1  # type: ignore[attr-defined]
    async with Runtime(postgres_url, tools=make_tools(log)) as rt:
        assert await rt.state(run.id) == live
