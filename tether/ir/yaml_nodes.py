"""YAML node specs -> IR nodes and their routes, one builder per node ``type``.

Field names follow the jamjet SDK's ``compile_yaml`` (``tool_ref``, ``model``, ``prompt``,
``input``, ``fallback`` ...) plus Tether's own (``tool``, ``cases``, ``branches``,
``wait_for``, ``output_key``). A problem raises ``ValueProblem`` with the sub-path of the
offending key so that the compiler can point at its line.

The builders of the work kinds (tool, model, agent, wait, human approval ...) are in
:mod:`tether.ir.yaml_work_kinds`; the control kinds (branch, parallel, join, condition, end)
are built here, beside the routes whose conditions they share.

Example::

    >>> built = build_node("inc", {"type": "tool", "tool": "add_one", "next": "done"})
    >>> built.node.kind.tool_ref, [r.to for r in built.routes]
    ('add_one', ['done'])
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.ir import types as t
from tether.ir.types import END, Node, NodeKind
from tether.ir.yaml_values import (
    ValueProblem,
    as_mapping,
    as_name_list,
    as_str,
    parse_duration,
    parse_retry,
)
from tether.ir.yaml_work_kinds import APPROVAL_TIMEOUT_OUTCOMES as APPROVAL_TIMEOUT_OUTCOMES
from tether.ir.yaml_work_kinds import WORK_KINDS, KindBuilder, Spec, YPath, _io, _sub
from tether.ir.yaml_work_kinds import parse_budget as parse_budget

_CONTROL_COMMON = frozenset({"type", "description", "labels"})


@dataclass
class Route:
    """One outgoing edge as written: ``where`` is its YAML sub-path inside the node."""

    to: str
    when: str | None
    where: YPath
    when_where: YPath | None = None


@dataclass
class BuiltNode:
    node: Node
    routes: list[Route]
    # IR sub-path (below "nodes.<id>.") -> YAML sub-path (below the node spec)
    kind_paths: dict[str, YPath] = field(default_factory=dict)


def _branch(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    key = "cases" if "cases" in spec else "conditions"
    raw = spec.get(key) or []
    if not isinstance(raw, list):
        raise ValueProblem((key,), f"'{key}' must be a list of {{when: ..., to: ...}}")
    cases = []
    for i, case in enumerate(raw):
        to, when, to_key, when_key = _case(case, (key, i))
        paths[f"kind.cases.{i}"] = (key, i)
        paths[f"kind.cases.{i}.to"] = (key, i, to_key)
        if when is not None:
            paths[f"kind.cases.{i}.when"] = (key, i, when_key)
        cases.append(t.BranchCase(to=to, when=when))
    default = spec.get("default")
    if default is not None:
        paths["kind.default"] = ("default",)
        default = _sub("default", as_str, default, "default")
    if not cases and default is None:
        raise ValueProblem((), "a branch node needs 'cases' or a 'default'")
    return t.BranchKind(cases=cases, default=default)


def _case(case: Any, where: YPath) -> tuple[str, str | None, str, str]:
    """A branch case: ``{when: cond, to: node}`` or the jamjet docs' ``{if: cond, next: node}``."""
    if not isinstance(case, Mapping):
        raise ValueProblem(where, "a case must be a mapping like {when: 'x > 1', to: node}")
    extra = sorted(set(case) - {"when", "if", "to", "next"})
    if extra:
        raise ValueProblem((*where, extra[0]), f"unknown case field {extra[0]!r}")
    to_key = "to" if "to" in case else "next"
    when_key = "when" if "when" in case else "if"
    if to_key not in case:
        raise ValueProblem(where, "a case needs 'to' (the node to route to)")
    to = _sub(to_key, as_str, case[to_key], "case target")
    when = case.get(when_key)
    return to, None if when is None else _condition_text(when, (*where, when_key)), to_key, when_key


def _condition_text(value: Any, where: YPath) -> str:
    if isinstance(value, bool):  # YAML 'when: true' is a bool; keep it as a condition
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueProblem(where, f"a condition must be a string, got {value!r}")


def _parallel(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    branches = _sub("branches", as_name_list, spec.get("branches", []), "branches")
    for i in range(len(branches)):
        paths[f"kind.branches.{i}"] = ("branches", i)
    return t.ParallelKind(branches=branches)


def _join(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    wait_for = _sub("wait_for", as_name_list, spec.get("wait_for", []), "wait_for")
    for i in range(len(wait_for)):
        paths[f"kind.wait_for.{i}"] = ("wait_for", i)
    return t.JoinKind(wait_for=wait_for)


def _end(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    output = spec.get("output")
    return t.EndKind(output=None if output is None else _sub("output", as_str, output, "output"))


def _condition(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    return t.ConditionKind(branches=[])


KINDS: dict[str, tuple[frozenset[str], KindBuilder]] = {
    **WORK_KINDS,
    "branch": (_CONTROL_COMMON | {"cases", "conditions", "default"}, _branch),
    "condition": (_CONTROL_COMMON | {"next", "expression", "if_true", "if_false"}, _condition),
    "parallel": (_CONTROL_COMMON | {"branches"}, _parallel),
    "join": (_CONTROL_COMMON | {"wait_for", "next"}, _join),
    "end": (_CONTROL_COMMON | {"output"}, _end),
}
_NO_ROUTES = {"branch", "parallel", "end"}
_HINTS = {
    ("parallel", "next"): "a parallel node routes through its branches; end each branch "
    "with 'next: <join node>' and put 'next' on the join",
    ("parallel", "join"): "end each branch with 'next: <join node>' and give the join node "
    "type: join",
    ("branch", "next"): "a branch node routes with 'cases' and 'default', not 'next'",
}


def build_node(node_id: str, spec: Spec) -> BuiltNode:
    """Build one node; raises ``ValueProblem`` naming the offending key."""
    node_type = spec.get("type", "tool")  # the jamjet SDK's default type
    if node_type not in KINDS:
        raise ValueProblem(("type",), _unknown("node type", node_type, KINDS))
    allowed, builder = KINDS[node_type]
    for key in spec:
        if (node_type, key) in _HINTS:
            raise ValueProblem((key,), f"'{key}' is not used here: {_HINTS[node_type, key]}")
        if key not in allowed:
            raise ValueProblem((key,), _unknown(f"key for a {node_type} node", key, allowed))
    kind_paths: dict[str, YPath] = {}
    kind = builder(node_id, spec, kind_paths)
    routes = [] if node_type in _NO_ROUTES else _routes(node_type, spec)
    node = Node(
        id=node_id,
        kind=kind,
        retry_policy=_retry(spec),
        node_timeout_secs=_timeout(spec),
        description=_opt_str(spec, "description"),
        labels=_labels(spec),
        output_key=_opt_str(spec, "output_key"),
        input=_io(spec) if allowed & {"input", "arguments"} else {},
    )
    return BuiltNode(node=node, routes=routes, kind_paths=kind_paths)


def _unknown(what: str, value: Any, allowed: Mapping[str, Any] | frozenset[str]) -> str:
    names = sorted(allowed)
    close = difflib.get_close_matches(str(value), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {value!r}{hint} (expected one of: {', '.join(names)})"


def _labels(spec: Spec) -> dict[str, str]:
    raw = _sub("labels", as_mapping, spec.get("labels"), "labels")
    return {k: str(v) for k, v in raw.items()}


def _opt_str(spec: Spec, key: str) -> str | None:
    value = spec.get(key)
    return None if value is None else _sub(key, as_str, value, key)


def _retry(spec: Spec) -> t.RetryPolicy | str | None:
    if "retry" in spec and "retry_policy" in spec:
        raise ValueProblem(("retry",), "give either 'retry' or 'retry_policy', not both")
    raw = spec.get("retry", spec.get("retry_policy"))
    key = "retry" if "retry" in spec else "retry_policy"
    if raw is None or isinstance(raw, str):
        return raw
    policy: t.RetryPolicy = _sub(key, parse_retry, raw)
    return policy


def _timeout(spec: Spec) -> float | None:
    raw = spec.get("timeout")
    if raw is None:
        return None
    secs: float = _sub("timeout", parse_duration, raw)
    return secs


def _routes(node_type: str, spec: Spec) -> list[Route]:
    if node_type == "condition" and "expression" in spec:
        return _expression_routes(spec)
    raw = spec.get("next")
    if raw is None:
        return [Route(END, None, ("type",) if "type" in spec else ())]
    if isinstance(raw, str):
        return [Route(raw, None, ("next",))]
    if not isinstance(raw, list):
        raise ValueProblem(("next",), "'next' must be a node name or a list of routes")
    routes = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            routes.append(Route(item, None, ("next", i)))
            continue
        if not isinstance(item, Mapping):
            raise ValueProblem(("next", i), "a route must be a node name or {to:, when:}")
        extra = sorted(set(item) - {"to", "when", "condition", "if"})
        if extra:
            raise ValueProblem(("next", i, extra[0]), f"unknown route field {extra[0]!r}")
        when_key = next((k for k in ("when", "condition", "if") if k in item), None)
        when = None
        if when_key is not None and item[when_key] is not None:
            when = _condition_text(item[when_key], ("next", i, when_key))
        to = _sub("next", _sub, i, as_str, item.get("to", END), "route target")
        when_where = None if when_key is None else ("next", i, when_key)
        routes.append(Route(to, when, ("next", i), when_where))
    return routes


def _expression_routes(spec: Spec) -> list[Route]:
    """The jamjet docs' condition node: ``expression`` + ``if_true`` / ``if_false``."""
    if "next" in spec:
        raise ValueProblem(("next",), "give either 'expression' with if_true/if_false or 'next'")
    if "if_true" not in spec:
        raise ValueProblem(("expression",), "a condition with 'expression' needs 'if_true'")
    expression = _condition_text(spec["expression"], ("expression",))
    routes = [
        Route(_sub("if_true", as_str, spec["if_true"], "if_true"), expression, ("if_true",),
              ("expression",)),
    ]  # fmt: skip
    otherwise = spec.get("if_false", END)
    routes.append(Route(_sub("if_false", as_str, otherwise, "if_false"), None, ("if_false",)))
    return routes
