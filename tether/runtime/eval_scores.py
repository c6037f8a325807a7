"""An eval node's deterministic scores, computed when it is handed out, and its verdict.

The planner adds the scores of its ``assertion``, ``latency`` and ``cost`` scorers to the
hand-out's input (``scores``, one entry per scorer, None where a judge will score), computed
from the state and the turn's time: they are journaled in ``node_scheduled`` before the eval's
work item runs, so replay reads them and never recomputes them (I2). The work item
(``tether.eval``, from the agents layer) fills in its judges' scores and returns the verdict.

Example::

    args = with_scores(node, {}, state, now_ms)
    args["scores"]   # [{"type": "assertion", "passed": True, "score": 1.0, "message": ...}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tether.ir.conditions import ConditionEvalError, compile_condition
from tether.ir.eval_spec import Assertion, Cost, Judge, Latency, Scorer, parse_scorers
from tether.ir.types import EvalKind, Node

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState

#: The facts of an eval's ``node_completed`` that carry its verdict (beside its judges'
#: tokens and cost).
PASSED_FACT = "eval_passed"
SCORES_FACT = "eval_scores"


def with_scores(
    node: Node, args: dict[str, Any], state: ExecutionState, now_ms: int
) -> dict[str, Any]:
    """The hand-out's input with the deterministic scores of ``node``'s scorers."""
    kind = node.kind
    assert isinstance(kind, EvalKind)
    scores = [_score(s, state, now_ms) for s in parse_scorers(kind.scorers)]
    return {**args, "scores": scores}


def _score(scorer: Scorer, state: ExecutionState, now_ms: int) -> dict[str, Any] | None:
    if isinstance(scorer, Judge):
        return None  # the work item asks its model
    if isinstance(scorer, Assertion):
        return _assertion(scorer, state.data)
    if isinstance(scorer, Latency):
        elapsed = now_ms - state.started_at_ms
        message = f"{elapsed} ms elapsed (max {scorer.max_ms:g} ms)"
        passed = elapsed <= scorer.max_ms
        return entry("latency", scorer.name, passed, elapsed, message, max_ms=scorer.max_ms)
    assert isinstance(scorer, Cost)
    spent = round(state.spent_usd, 8)
    message = f"${spent:.6f} spent (max ${scorer.max_usd:g})"
    passed = spent <= scorer.max_usd
    return entry("cost", scorer.name, passed, spent, message, max_usd=scorer.max_usd)


def _assertion(scorer: Assertion, data: Mapping[str, Any]) -> dict[str, Any]:
    if "output" not in data:  # jamjet's checks name the run's output `output`: its state
        data = {**data, "output": data}
    failed: list[str] = []
    for expr in scorer.exprs:
        try:
            if not compile_condition(expr).evaluate(data):
                failed.append(f"{expr} does not hold")
        except ConditionEvalError as exc:
            failed.append(str(exc))
    passed = not failed
    message = f"holds: {' and '.join(scorer.exprs)}" if passed else "; ".join(failed)
    exprs: str | list[str] = scorer.exprs[0] if len(scorer.exprs) == 1 else list(scorer.exprs)
    return entry("assertion", scorer.name, passed, 1.0 if passed else 0.0, message, expr=exprs)


def entry(
    kind: str, name: str, passed: bool, score: float | None, message: str, **extra: Any
) -> dict[str, Any]:
    """One scorer's result as recorded: its type (and name), passed, score, message."""
    head: dict[str, Any] = {"type": kind, "name": name} if name else {"type": kind}
    return {**head, "passed": passed, "score": score, "message": message, **extra}


def verdict(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The eval's output: passed when every scorer passed, and the scores in order."""
    return {"passed": all(s.get("passed") is True for s in scores), "scores": list(scores)}


def verdict_facts(output: Mapping[str, Any]) -> dict[str, Any]:
    return {PASSED_FACT: output.get("passed") is True, SCORES_FACT: output.get("scores", [])}


def failing(output: Any) -> list[dict[str, Any]]:
    scores = output.get("scores") if isinstance(output, dict) else None
    return [s for s in scores or () if isinstance(s, dict) and s.get("passed") is not True]


def summary(output: Any) -> str:
    """The failing scores, one clause each (for a run's error)."""
    parts = [f"{_label(s)}: {s.get('message', '')}" for s in failing(output)]
    return "; ".join(parts) or "no score passed"


def feedback(output: Any) -> str:
    """What ``retry_with_feedback`` tells the node it runs again."""
    lines = [f"- {_label(s)}: {s.get('message', '')}" for s in failing(output)]
    return "The previous attempt did not pass evaluation:\n" + "\n".join(lines)


def _label(score: Mapping[str, Any]) -> str:
    label = str(score.get("name") or score.get("type", "scorer"))
    model = score.get("model")
    return f"{label} ({model})" if model else label
