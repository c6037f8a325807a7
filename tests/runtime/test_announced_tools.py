"""The rule for tools the engine lacks (tether.runtime.announced_tools): which parameters a tool
binds by as workers join and leave, and which held runs are told when one is announced."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.ir import compile_yaml_text
from tether.runtime.announced_tools import AnnouncedTools, ToolSignature, unserved_tools
from tether.runtime.tools import ToolRegistry

ONE = ToolSignature("t", ("a",), frozenset({"a"}))
TWO = ToolSignature("t", ("a", "b"), frozenset({"a"}))
OTHER = ToolSignature("u", ("x",), frozenset())


def test_a_tool_binds_by_its_earliest_worker_and_keeps_that_after_all_leave(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = AnnouncedTools()
    changes: list[int] = []
    table.on_change = lambda: changes.append(1)
    assert table.signature("t") is None
    table.join("w1", ["q"], [ONE])
    assert table.signature("t") == ONE and changes == [1]
    with caplog.at_level(logging.WARNING):
        table.join("w2", ["q"], [TWO])  # differs: w1's stands, and it is said
    assert table.signature("t") == ONE and changes == [1]
    assert "worker w2 announces tool 't' with parameters (a, b=...)" in caplog.text
    table.leave("w1")  # w2 is the earliest serving it now
    assert table.signature("t") == TWO and changes == [1, 1]
    table.leave("w2")  # nobody serves it: it binds as it did
    assert table.signature("t") == TWO and table.serving() == {}
    table.join("w3", ["gpu"], [ONE])
    assert table.serving() == {
        "t": {"params": ["a"], "required": ["a"], "accepts_kwargs": False, "schema": {},
              "workers": {"w3": ["gpu"]}},
    }  # fmt: skip


def test_holds_are_released_to_be_planned_again_when_their_tool_is_announced() -> None:
    table = AnnouncedTools()
    told: list[list[str]] = []
    table.on_served = told.append
    table.hold("e1", "n1", "t", "q")
    table.hold("e2", "n1", "u", "q")
    assert [h.reason for h in table.holds_of("e1")] == [
        "waiting for a worker serving tool 't' on queue 'q'"
    ]
    table.join("w1", None, [ONE])
    assert told == [["e1"]] and not table.holding("e1") and table.holding("e2")
    table.release("e2")
    table.join("w2", None, [OTHER])
    assert told == [["e1"]]  # e2 ended meanwhile: nobody to tell


def test_unserved_tools_names_the_tools_nobody_has_and_misfit_inputs() -> None:
    wf = compile_yaml_text(
        'workflow: {id: w, version: "1", start: a}\n'
        "nodes:\n"
        "  a: {type: tool, tool: t, input: {a: 1, c: 2}, next: b}\n"
        "  b: {type: tool, tool: u, next: c}\n"
        "  c: {type: tool, tool: u, next: end}\n",
        "w.yaml",
    )
    table = AnnouncedTools()
    table.join("w1", None, [ONE])
    unserved, misfits = unserved_tools(wf, ToolRegistry(), table)
    assert unserved == {"u": ["b", "c"]}
    assert misfits == [
        "node 'a': input 'c' is not a parameter of tool 't' (parameters: a) "
        "(as its workers announced it)"
    ]


_WORKERS = st.sampled_from(["w1", "w2", "w3"])
_SIGS = st.sampled_from([ONE, TWO, ToolSignature("t", (), frozenset(), accepts_kwargs=True)])
_STEPS = st.lists(
    st.one_of(st.tuples(st.just("join"), _WORKERS, _SIGS), st.tuples(st.just("leave"), _WORKERS)),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_STEPS)
def test_the_binding_is_the_earliest_serving_workers_else_the_last_one(steps: list[tuple]) -> None:
    """A model of the rule: the workers serving ``t`` in join order (a re-join goes last); the
    binding is the first one's signature, or, while none serves, the one bound last. The
    bindings are dropped (on_change) exactly when the binding's parameters change."""
    table = AnnouncedTools()
    changes = 0

    def changed() -> None:
        nonlocal changes
        changes += 1

    table.on_change = changed
    serving: dict[str, ToolSignature] = {}
    bound: ToolSignature | None = None
    expected_changes = 0
    for step in steps:
        if step[0] == "join":
            _, worker, sig = step
            serving.pop(worker, None)
            serving[worker] = sig
            table.join(worker, None, [sig])
        else:
            serving.pop(step[1], None)
            table.leave(step[1])
        now = next(iter(serving.values()), bound)
        if now is not None and (bound is None or not bound.same_binding(now)):
            expected_changes += 1
        bound = now
        assert table.signature("t") == bound
        assert changes == expected_changes
