"""The eval node in the IR: its scorers' spellings (Tether's and the jamjet SDK's), the
failure routes, and the registration errors that name the node, the scorer and the line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from tether.ir import EvalKind, WorkflowError, check, compile_yaml_text, validate, workflow_from_ir
from tether.ir.eval_spec import (
    Assertion,
    Cost,
    Judge,
    Latency,
    node_before,
    parse_scorer,
    parse_scorers,
)
from tether.ir.yaml_values import ValueProblem


def compile_(body: str, validate: bool = True) -> Any:
    return compile_yaml_text(textwrap.dedent(body), "flow.yaml", validate=validate)


def flow(check_spec: str, extra: str = "") -> str:
    return f"""
    workflow: {{id: w, version: '1'}}
    nodes:
      draft: {{tool: t, output_key: answer, next: check}}
      check: {check_spec}
    {extra}
    """


@pytest.mark.parametrize(
    ("raw", "scorer"),
    [
        ({"type": "assertion", "expr": "answer != ''"}, Assertion(("answer != ''",))),
        ({"type": "assertion", "check": "n > 1", "name": "big"}, Assertion(("n > 1",), "big")),
        ({"type": "assertion", "checks": ["a", "b == 2"]}, Assertion(("a", "b == 2"))),
        ({"type": "latency", "max_ms": 250}, Latency(250.0)),
        ({"type": "latency", "threshold_ms": 10}, Latency(10.0)),
        ({"type": "latency"}, Latency(5000.0)),
        ({"type": "cost", "max_usd": 0.5}, Cost(0.5)),
        ({"type": "cost", "threshold_usd": 2}, Cost(2.0)),
        (
            {"type": "llm_judge", "model": "fast", "rubric": "Sourced?", "min_score": 0.7},
            Judge("fast", "Sourced?", 0.7),
        ),
        ({"type": "llm_judge", "model": "m", "rubric": "r"}, Judge("m", "r", 3.0)),
    ],
)
def test_every_scorer_spelling_is_read(raw: dict[str, Any], scorer: Any) -> None:
    assert parse_scorer(raw) == scorer


def test_min_score_up_to_one_is_a_0_1_scale_above_one_a_1_5_scale() -> None:
    assert Judge("m", "r", 0.7).scale == (0.0, 1.0)
    assert Judge("m", "r", 1).scale == (0.0, 1.0)
    assert Judge("m", "r", 4).scale == (1.0, 5.0)


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"type": "vibes"}, ("type",), "unknown scorer type 'vibes'"),
        ({"type": "custom", "module": "x"}, ("type",), "custom scorers are not supported"),
        ({"type": "latency", "max_sec": 1}, ("max_sec",), "unknown key 'max_sec'"),
        ({"type": "latency", "max_ms": -1}, ("max_ms",), "must not be negative"),
        ({"type": "cost", "max_usd": "1"}, ("max_usd",), "must be a number"),
        ({"type": "assertion"}, (), "needs 'expr'"),
        ({"type": "assertion", "expr": "n = 1"}, ("expr",), "use '==' to compare"),
        ({"type": "llm_judge", "rubric": "r"}, (), "needs 'model'"),
        ({"type": "llm_judge", "model": "m", "rubric": "r", "min_score": 7}, ("min_score",), "1-5"),
        ("latency", (), "must be a mapping"),
    ],
)
def test_a_bad_scorer_names_the_key_at_fault(
    raw: Any, path: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(ValueProblem) as info:
        parse_scorers([{"type": "cost"}, raw])
    assert info.value.subpath == (1, *path)
    assert fragment in str(info.value)


def test_jamjet_checks_with_len_and_subscripts_compile_other_calls_are_refused() -> None:
    ok = "{type: eval, scorers: [{type: assertion, check: \"len(output['review']) >= 200\"}]}"
    compile_(flow(ok))
    text = flow("{type: eval, scorers: [{type: assertion, check: \"output.lower() == 'x'\"}]}")
    with pytest.raises(WorkflowError) as info:
        compile_(text)
    message = str(info.value)
    assert "flow.yaml:5" in message and "node 'check'" in message
    assert "function calls are not supported" in message and "len(...)" in message


def test_a_bad_scorer_in_yaml_names_its_line() -> None:
    text = flow(
        """
        type: eval
        scorers:
          - {type: latency, max_ms: 100}
          - {type: assertion, expr: "answer !== ''"}
        next: end"""
    )
    with pytest.raises(WorkflowError) as info:
        compile_(text)
    assert "flow.yaml:9" in str(info.value)
    assert "invalid condition \"answer !== ''\"" in str(info.value)


def test_yaml_keeps_scorers_as_written_and_defaults_max_retries_for_a_retry() -> None:
    wf = compile_(flow("{type: eval, scorers: [{type: latency, threshold_ms: 9}], on_fail: retry}"))
    kind = wf.nodes["check"].kind
    assert kind == EvalKind(scorers=[{"type": "latency", "threshold_ms": 9}], on_fail="retry",
                            max_retries=2)  # fmt: skip
    assert node_before(wf, "check") == "draft"
    halt = compile_(flow("{type: eval, scorers: [{type: latency}], on_fail: halt}"))
    assert halt.nodes["check"].kind.max_retries == 0


def test_on_fail_to_a_node_makes_it_reachable_and_an_unknown_one_is_refused() -> None:
    ok = compile_(
        flow(
            "{type: eval, scorers: [{type: latency}], on_fail: fix, next: end}",
            "  fix: {tool: t, next: end}",
        )
    )
    assert validate(ok) == []
    with pytest.raises(WorkflowError) as info:
        compile_(flow("{type: eval, scorers: [{type: latency}], on_fail: fixx, next: end}"))
    assert "node 'check': on_fail names unknown node 'fixx'" in str(info.value)


def test_a_retry_needs_exactly_one_node_before_it_that_does_work() -> None:
    alone = """
    workflow: {id: w, version: '1'}
    nodes:
      check: {type: eval, scorers: [{type: latency}], on_fail: retry, next: end}
    """
    with pytest.raises(WorkflowError, match="runs the one node before the eval again, but it "
                       "has none; route to a node instead"):  # fmt: skip
        compile_(alone)
    two = """
    workflow: {id: w, version: '1'}
    nodes:
      pick: {type: branch, cases: [{when: "x == 1", to: a}], default: b}
      a: {tool: t, next: check}
      b: {tool: t, next: check}
      check: {type: eval, scorers: [{type: latency}], on_fail: retry_with_feedback, next: end}
    """
    with pytest.raises(WorkflowError, match=r"but it has 2 \(a, b\)"):
        compile_(two)
    after_branch = """
    workflow: {id: w, version: '1'}
    nodes:
      pick: {type: branch, cases: [{when: "x == 1", to: check}], default: end}
      check: {type: eval, scorers: [{type: latency}], on_fail: retry, next: end}
    """
    with pytest.raises(WorkflowError, match="'pick', is a branch node, which does no work"):
        compile_(after_branch)


def test_an_ir_eval_that_retries_zero_times_is_refused() -> None:
    text = flow("{type: eval, scorers: [{type: latency}], on_fail: retry, max_retries: 0}")
    wf = compile_(text, validate=False)
    assert any("max_retries 0 would never retry" in i.message for i in validate(wf))


def test_the_jamjet_sdks_eval_ir_is_read_and_checked() -> None:
    compiler = pytest.importorskip("jamjet.workflow.ir_compiler")
    ir = compiler.compile_yaml(
        textwrap.dedent(
            """
            workflow: {id: w, version: 0.1.0, start: draft}
            nodes:
              draft: {type: model, model: fast, prompt: "Write", output_key: report, next: ev}
              ev:
                type: eval
                scorers:
                  - {type: llm_judge, rubric: "Deep?", min_score: 4, model: claude-haiku-4-5}
                  - {type: latency, threshold_ms: 60000}
                  - {type: cost, threshold_usd: 0.5}
                on_fail: retry_with_feedback
                max_retries: 2
                next: end
            """
        )
    )
    wf = workflow_from_ir(ir)
    check(wf)
    kind = wf.nodes["ev"].kind
    assert isinstance(kind, EvalKind)
    assert parse_scorers(kind.scorers) == [
        Judge("claude-haiku-4-5", "Deep?", 4.0), Latency(60000.0), Cost(0.5),
    ]  # fmt: skip
    assert node_before(wf, "ev") == "draft"
