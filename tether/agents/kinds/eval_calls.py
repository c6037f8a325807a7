"""An eval node's judge calls, bound from the IR and state when it is handed out (so what each
judge is sent is in the journal before it is sent, I12), and the checks made of its judges at
registration.

What a judge judges: the eval's ``input_expr`` rendered over state, else the output of the
node before the eval (its state key), else the whole state as JSON. It is asked for a JSON
object ``{"score": ..., "reason": ...}`` on its scorer's scale (0-1, or 1-5 when
``min_score`` is above 1).

Example::

    bind = eval_binder(wf, node, CostTable())
    args = bind(state_data)     # {"judges": [{"index": 1, "call": {...model call...}, ...}],
                                #  "projected_cost_usd": ..., "projected_tokens": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from tether.agents.kinds.model_calls import call_args, model_spec, render
from tether.agents.providers.costs import CostTable
from tether.agents.providers.errors import ModelConfigError
from tether.ir.errors import ValidationIssue
from tether.ir.eval_spec import (
    Judge,
    Scorer,
    node_before,
    parse_scorers,
    subject_template,
)
from tether.ir.templates import DEFAULT_MAX_OUTPUT
from tether.ir.types import EvalKind, Node, PythonFnKind, Workflow
from tether.ir.yaml_values import ValueProblem
from tether.runtime.node_kinds import CallBinder

_json = msgspec.json.Encoder(order="deterministic")
#: What the judges are shown, from state.
Subject = Callable[[Mapping[str, Any]], str]

_SYSTEM = (
    "You are an impartial evaluator. Judge the output you are given against the rubric. "
    "Answer with only a JSON object and no other text: "
    '{{"score": {scale}, "reason": "<one or two sentences>"}}'
)
_SCALES = {(0.0, 1.0): "<a number from 0 to 1>", (1.0, 5.0): "<an integer from 1 to 5>"}


def eval_binder(wf: Workflow, node: Node, costs: CostTable) -> CallBinder:
    """How the eval's hand-out input is bound: its judges' model calls (none: ``{}``)."""
    kind = node.kind
    assert isinstance(kind, EvalKind)
    judges = [(i, s) for i, s in enumerate(parse_scorers(kind.scorers)) if isinstance(s, Judge)]
    if not judges:
        return lambda data: {}
    specs = {i: model_spec(wf, judge.model) for i, judge in judges}
    subject = _subject_of(wf, node, kind)

    def bind(data: Mapping[str, Any]) -> dict[str, Any]:
        text = subject(data)
        out, cost, tokens = [], 0.0, 0
        for i, judge in judges:
            call = call_args(specs[i], judge_messages(judge, text), (), None, None, None,
                             "value", costs)  # fmt: skip
            cost += call.pop("projected_cost_usd")
            tokens += call.pop("projected_tokens")
            entry = {"index": i, "model": judge.model, "min_score": judge.min_score}
            out.append({**entry, "scale": list(judge.scale), "name": judge.name, "call": call})
        return {"judges": out, "projected_cost_usd": round(cost, 8), "projected_tokens": tokens}

    return bind


def judge_messages(judge: Judge, subject: str) -> list[dict[str, Any]]:
    system = _SYSTEM.format(scale=_SCALES[judge.scale])
    user = f"Rubric:\n{judge.rubric.strip()}\n\nOutput to evaluate:\n{subject}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _subject_of(wf: Workflow, node: Node, kind: EvalKind) -> Subject:
    """What the judges are shown, from state: see the module docstring."""
    template = subject_template(kind)
    if template is not None:
        return lambda data: _bounded(render(template, data))
    before = node_before(wf, node.id)
    key: str | None = None
    if before is not None:
        prev = wf.nodes[before]
        merges = isinstance(prev.kind, PythonFnKind) and prev.output_key is None
        key = None if merges else prev.state_key
    if key is None:
        return lambda data: _bounded(_text(dict(data)))
    return lambda data: _bounded(_text(data.get(key)))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return _json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)


def _bounded(text: str) -> str:
    if len(text) > DEFAULT_MAX_OUTPUT:
        raise ValueError(
            f"the output to evaluate is {len(text)} characters, more than {DEFAULT_MAX_OUTPUT}: "
            "give the eval an input_expr that picks what to judge"
        )
    return text


def check_evals(wf: Workflow, costs: CostTable) -> list[ValidationIssue]:
    """Each judge's model resolves (and has a price when a cost budget must count it). The
    feedback of a ``retry_with_feedback`` reaches a model or agent node whose prompt does not
    place it: it follows the prompt (``model_calls.with_feedback``)."""
    issues: list[ValidationIssue] = []
    for node in wf.nodes.values():
        if not isinstance(node.kind, EvalKind):
            continue
        try:
            scorers: list[Scorer] = parse_scorers(node.kind.scorers)
        except ValueProblem:
            continue  # the IR's own validation reports it
        for i, scorer in enumerate(scorers):
            if isinstance(scorer, Judge):
                where = f"nodes.{node.id}.kind.scorers.{i}.model"
                problem = _judge_model_problem(wf, scorer.model, costs)
                if problem is not None:
                    issues.append(ValidationIssue(where, f"eval node {node.id!r}: {problem}"))
    return issues


def _judge_model_problem(wf: Workflow, ref: str, costs: CostTable) -> str | None:
    try:
        spec = model_spec(wf, ref)
    except ModelConfigError as exc:
        return f"llm_judge model {ref!r}: {exc} (models: {', '.join(wf.models) or 'none'})"
    capped = wf.budget is not None and wf.budget.max_cost_usd is not None
    if capped and spec.cost is None and costs.price(spec.model) is None:
        return (
            f"the workflow's cost budget cannot count llm_judge model {spec.model!r}: it has "
            "no price here; give one in models (cost: {input: ..., output: ...})"
        )
    return None
