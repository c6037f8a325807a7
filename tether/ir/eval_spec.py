"""An eval node's scorers and failure route, read from the IR and checked at registration.

``EvalKind.scorers`` keeps each scorer as written (a mapping tagged by ``type``); this module
reads the spellings Tether and the `jamjet` SDK write into typed scorers:

- ``assertion``: ``expr`` (or ``check``, or a list ``checks``): conditions of the condition
  language (:mod:`tether.ir.conditions`, never Python ``eval``) over state.
- ``latency``: ``max_ms`` (or ``threshold_ms``; default 5000).
- ``cost``: ``max_usd`` (or ``threshold_usd``; default 1.0).
- ``llm_judge``: ``model``, ``rubric``, ``min_score`` (default 3). ``min_score`` up to 1 is
  on a 0-1 scale, above 1 on a 1-5 scale (at most 5).

Any scorer may carry a ``name``, shown in its messages. ``on_fail`` is ``fail`` (or jamjet's
``halt``), ``retry``, ``retry_with_feedback`` or a node id (see :class:`tether.ir.types.EvalKind`).

Example::

    >>> parse_scorer({"type": "latency", "threshold_ms": 200})
    Latency(max_ms=200.0, name='')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec

from tether.ir import types as t
from tether.ir.conditions import compile_condition
from tether.ir.errors import ConditionSyntaxError
from tether.ir.templates import TemplateError, parse_template
from tether.ir.yaml_values import ValueProblem

#: Where ``retry_with_feedback`` leaves the failing scores' messages for the retried node.
FEEDBACK_KEY: Final = "__eval_feedback__"
#: ``max_retries`` of a retrying eval written in YAML without one.
DEFAULT_RETRIES: Final = 2

FAIL: Final = "fail"
RETRY: Final = "retry"
FEEDBACK: Final = "retry_with_feedback"
_FAIL_WORDS = frozenset({FAIL, "halt"})


class Assertion(msgspec.Struct, frozen=True):
    exprs: tuple[str, ...]
    name: str = ""


class Latency(msgspec.Struct, frozen=True):
    max_ms: float
    name: str = ""


class Cost(msgspec.Struct, frozen=True):
    max_usd: float
    name: str = ""


class Judge(msgspec.Struct, frozen=True):
    model: str
    rubric: str
    min_score: float
    name: str = ""

    @property
    def scale(self) -> tuple[float, float]:
        """The range its model scores in: 0-1, or 1-5 when ``min_score`` is above 1."""
        return (0.0, 1.0) if self.min_score <= 1 else (1.0, 5.0)


Scorer = Assertion | Latency | Cost | Judge

_KEYS: Final[dict[str, frozenset[str]]] = {
    "assertion": frozenset({"expr", "check", "checks"}),
    "latency": frozenset({"max_ms", "threshold_ms"}),
    "cost": frozenset({"max_usd", "threshold_usd"}),
    "llm_judge": frozenset({"model", "rubric", "min_score"}),
}


def parse_scorer(raw: Any) -> Scorer:
    """The scorer ``raw`` describes; raises ``ValueProblem`` naming the key at fault."""
    if not isinstance(raw, Mapping):
        raise ValueProblem((), f"a scorer must be a mapping with a 'type', got {raw!r}")
    kind = raw.get("type")
    if kind == "custom":
        raise ValueProblem(("type",), "custom scorers are not supported (they would import code)")
    if kind not in _KEYS:
        raise ValueProblem(("type",), f"unknown scorer type {kind!r} (expected one of: "
                           f"{', '.join(_KEYS)})")  # fmt: skip
    extra = sorted(set(raw) - _KEYS[kind] - {"type", "name"})
    if extra:
        allowed = ", ".join(sorted(_KEYS[kind] | {"name"}))
        raise ValueProblem((extra[0],), f"unknown key {extra[0]!r} for a {kind} scorer "
                           f"(expected: {allowed})")  # fmt: skip
    name = _text(raw, "name", "")
    if kind == "assertion":
        return Assertion(_exprs(raw), name)
    if kind == "latency":
        return Latency(_limit(raw, ("max_ms", "threshold_ms"), 5000.0), name)
    if kind == "cost":
        return Cost(_limit(raw, ("max_usd", "threshold_usd"), 1.0), name)
    return _judge(raw, name)


def parse_scorers(raw: Iterable[Any]) -> list[Scorer]:
    """Every scorer of an eval node; a problem's sub-path starts with the scorer's index."""
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(parse_scorer(item))
        except ValueProblem as exc:
            raise ValueProblem((i, *exc.subpath), str(exc)) from None
    return out


def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        raise ValueProblem((), f"a {raw['type']} scorer needs '{key}'")
    if not isinstance(value, str):
        raise ValueProblem((key,), f"'{key}' must be a string, got {value!r}")
    return value


def _exprs(raw: Mapping[str, Any]) -> tuple[str, ...]:
    key = next((k for k in ("expr", "check", "checks") if k in raw), "expr")
    value = raw.get(key)
    items = value if isinstance(value, list) else [value]
    if not items or value is None:
        raise ValueProblem((), "an assertion scorer needs 'expr' (a condition over state)")
    for i, expr in enumerate(items):
        where: tuple[str | int, ...] = (key, i) if isinstance(value, list) else (key,)
        if not isinstance(expr, str) or not expr.strip():
            raise ValueProblem(where, f"an assertion must be a condition string, got {expr!r}")
        try:
            compile_condition(expr)
        except ConditionSyntaxError as exc:
            raise ValueProblem(where, _syntax(expr, exc)) from None
    return tuple(items)


def _syntax(expr: str, exc: ConditionSyntaxError) -> str:
    hint = ""
    if "function calls" in exc.reason or "subscript" in exc.reason:
        hint = (
            " (assertions use the condition language: state paths with ['key'] or [0], "
            "literals, comparisons, and/or/not, in, len(...); `output` is the run's state)"
        )
    return f"invalid condition {expr!r} at column {exc.column}: {exc.reason}{hint}"


def _number(raw: Mapping[str, Any], key: str) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem((key,), f"'{key}' must be a number, got {value!r}")
    return float(value)


def _limit(raw: Mapping[str, Any], keys: tuple[str, str], default: float) -> float:
    key = next((k for k in keys if k in raw), None)
    if key is None:
        return default
    value = _number(raw, key)
    if value < 0:
        raise ValueProblem((key,), f"'{key}' must not be negative, got {value:g}")
    return value


def _judge(raw: Mapping[str, Any], name: str) -> Judge:
    model = _text(raw, "model")
    rubric = _text(raw, "rubric")
    if not model.strip() or not rubric.strip():
        raise ValueProblem(("model" if not model.strip() else "rubric",), "must not be empty")
    min_score = _number(raw, "min_score") if "min_score" in raw else 3.0
    if not 0 <= min_score <= 5:
        raise ValueProblem(("min_score",), f"min_score must be 0-1 (a 0-1 scale) or 1-5 (a 1-5 "
                           f"scale), got {min_score:g}")  # fmt: skip
    return Judge(model, rubric, min_score, name)


def on_fail_mode(on_fail: str) -> str:
    """``fail``, ``retry``, ``retry_with_feedback``, or ``route`` (to the node it names)."""
    if on_fail in _FAIL_WORDS:
        return FAIL
    if on_fail in (RETRY, FEEDBACK):
        return on_fail
    return "route"


def subject_template(kind: t.EvalKind) -> str | None:
    """``input_expr`` as a template: a bare state path ``report`` means ``{{ report }}``."""
    expr = kind.input_expr
    if not expr:
        return None
    return expr if "{{" in expr else "{{ " + expr.strip() + " }}"


def predecessors(
    wf: t.Workflow, node_id: str, successors: Callable[[str], Iterable[str]]
) -> list[str]:
    """The nodes that route to ``node_id`` (``successors`` as the validator computes them)."""
    return [n for n in wf.nodes if n != node_id and node_id in successors(n)]


def node_before(wf: t.Workflow, node_id: str) -> str | None:
    """The node a retrying eval runs again, and whose output a judge reads by default: its
    one predecessor (None when it has none or several)."""
    from tether.ir.validation import successors  # which imports this module

    by_source = wf.edges_by_source()
    preds = predecessors(wf, node_id, lambda n: successors(wf, n, by_source))
    return preds[0] if len(preds) == 1 else None


def eval_problems(
    wf: t.Workflow, node: t.Node, kind: t.EvalKind, preds: list[str]
) -> list[tuple[str, str]]:
    """What is wrong with an eval node, each as (path below ``nodes.<id>.kind``, message)."""
    who = f"eval node '{node.id}'"
    out: list[tuple[str, str]] = []
    if not kind.scorers:
        out.append(("scorers", f"{who} has no scorers"))
    try:
        parse_scorers(kind.scorers)
    except ValueProblem as exc:
        out.append((".".join(map(str, ("scorers", *exc.subpath))), f"{who}: scorer {exc}"))
    template = subject_template(kind)
    if template is not None:
        try:
            parse_template(template)
        except TemplateError as exc:
            out.append(("input_expr", f"{who}: input_expr: {exc}"))
    mode = on_fail_mode(kind.on_fail)
    if mode in (RETRY, FEEDBACK):
        problem = _retry_problem(wf, kind, preds)
        if problem is not None:
            out.append(("on_fail", f"{who}: {problem}"))
    return out


def _retry_problem(wf: t.Workflow, kind: t.EvalKind, preds: list[str]) -> str | None:
    if len(preds) != 1:
        which = "none" if not preds else f"{len(preds)} ({', '.join(sorted(preds))})"
        return (
            f"on_fail {kind.on_fail!r} runs the one node before the eval again, but it has "
            f"{which}; route to a node instead (on_fail: <node id>)"
        )
    before = wf.nodes[preds[0]]
    if isinstance(before.kind, t.CONTROL_KINDS):
        tag = before.kind.__struct_config__.tag
        return (
            f"on_fail {kind.on_fail!r}: the node before it, '{before.id}', is a {tag} node, "
            "which does no work to retry"
        )
    if kind.max_retries < 1:
        return f"on_fail {kind.on_fail!r} with max_retries 0 would never retry: give max_retries"
    return None
