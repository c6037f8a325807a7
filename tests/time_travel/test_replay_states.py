"""The state at each record: a prefix's fold (I2), its view and the diff to the one before."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether import Runtime
from tether.runtime.time_travel import RecordNotFound, state_diff, state_view

from .travel_flows import CHAIN, bump, code_chain

pytestmark = pytest.mark.anyio


async def test_each_step_is_the_fold_of_its_prefix_I2(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(CHAIN, {"n": 5})
        await run.result()
        journal = await rt.journal(run.id)
        steps = await rt.replay_states(run.id)
        assert [s.seq for s in steps] == [e.seq for e in journal]
        assert steps[-1].state == await rt.state(run.id)
        for step in steps:
            at, before = await rt.state_at(run.id, step.seq)
            assert at == step
            assert before is None if step.seq == 1 else before == steps[step.seq - 2]
        # The state moves where the records say: n is 6 once `a` completed.
        done_a = next(s for s in steps if s.entry.type == "node_completed")
        at, before = await rt.state_at(run.id, done_a.seq)
        assert before is not None
        diff = state_diff(state_view(before.state), state_view(at.state))
        assert {"op": "replace", "path": "/data/n", "old": 5, "value": 6} in diff
        assert state_view(at.state)["nodes"]["a"]["status"] == "completed"
        with pytest.raises(RecordNotFound, match=f"has no record {len(journal) + 1}"):
            await rt.state_at(run.id, len(journal) + 1)


async def test_a_code_first_view_shows_its_calls(db_url: str) -> None:
    async with Runtime(db_url, workflows=[code_chain]) as rt:
        run = await rt.start(code_chain, {"n": 0})
        await run.result()
        view = state_view((await rt.replay_states(run.id))[-1].state)
        assert view["calls"]["add#1"] == {"failed": False, "value": 1}
        assert "running" not in view


def _apply(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """A JSON Patch applier for the ops state_diff makes (add, remove, replace)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if not parts:
            doc = op["value"]
            continue
        parent = doc
        for part in parts[:-1]:
            parent = parent[part]
        if op["op"] == "remove":
            del parent[parts[-1]]
        else:
            parent[parts[-1]] = op["value"]
    return doc


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "~", "/", "a/b"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_json, _json)
def test_applying_the_diff_gives_the_later_state(before: Any, after: Any) -> None:
    ops = state_diff(before, after)
    assert _apply(before, ops) == after
    assert (ops == []) == (_dumps(before) == _dumps(after))


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
