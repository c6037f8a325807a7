"""Graph and schema checks of a ``Workflow``, agreeing with the runtime's routing rules.

``validate`` returns every issue found (never stops at the first); ``check`` raises
``WorkflowInvalid`` listing them one per line as ``file:line: message``.

Example::

    issues = validate(wf)
    for issue in issues:
        print(issue.path, issue.message)
    check(wf)   # raises WorkflowInvalid when issues is not empty
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Final

import msgspec

from tether.ir import types as t
from tether.ir.approvers import approver_problem
from tether.ir.conditions import compile_condition
from tether.ir.errors import ConditionSyntaxError, ValidationIssue, WorkflowInvalid
from tether.ir.eval_spec import eval_problems, on_fail_mode, predecessors
from tether.ir.governance import redact_policy_problems
from tether.ir.secret_refs import reference_problem
from tether.ir.state_schema import value_matches
from tether.ir.types import END, STATE_TYPES, Node, RetryPolicy, Workflow


def validate(wf: Workflow) -> list[ValidationIssue]:
    """Every problem in ``wf``, each with a dotted path and (when known) a source location."""
    v = _Validator(wf)
    v.run()
    return v.issues


def check(wf: Workflow) -> None:
    """Raise ``WorkflowInvalid`` if ``validate`` finds anything."""
    issues = validate(wf)
    if issues:
        raise WorkflowInvalid(issues)


def successors(
    wf: Workflow, node_id: str, by_source: Mapping[str, list[t.Edge]] | None = None
) -> list[str]:
    """Where a node can route to, as the runtime routes (parallel edges are ignored).

    Pass ``by_source`` (``wf.edges_by_source()``) when asking for many nodes: without it each
    call scans every edge."""
    kind = wf.nodes[node_id].kind
    if isinstance(kind, t.TERMINAL_KINDS):
        return []
    if isinstance(kind, t.ParallelKind):
        return list(kind.branches)
    if isinstance(kind, t.BranchKind):
        targets = [c.to for c in kind.cases]
        return targets + ([kind.default] if kind.default is not None else [])
    edges = wf.outgoing(node_id) if by_source is None else by_source.get(node_id, [])
    targets = [e.to for e in edges]
    if isinstance(kind, t.HumanApprovalKind) and kind.fallback_node is not None:
        targets.append(kind.fallback_node)
    if isinstance(kind, t.WaitKind) and kind.on_timeout is not None:
        targets.append(kind.on_timeout)
    if isinstance(kind, t.EvalKind) and on_fail_mode(kind.on_fail) == "route":
        targets.append(kind.on_fail)  # where a failing verdict goes (tether.ir.eval_spec)
    return targets


#: Name comparisons spent on 'did you mean' hints in one validation (a few ms of difflib).
_HINT_COMPARISONS = 20_000


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: Longest node id: a work item id (execution/node/dispatch) must fit a worker's frame.
MAX_NODE_ID_CHARS: Final = 256


class _Validator:
    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.issues: list[ValidationIssue] = []
        self.broken: set[str] = set()  # nodes with no way out or an unknown target
        self.by_source = wf.edges_by_source()  # built once: validation stays linear
        self.hint_budget = _HINT_COMPARISONS

    def suggest(self, name: str, options: Collection[str]) -> str:
        """A 'did you mean' hint while the budget lasts: each hint compares ``name`` with every
        option, so thousands of unknown names among thousands of nodes would be quadratic."""
        if len(options) > self.hint_budget:
            return ""
        self.hint_budget -= len(options)
        return _suggest(name, options)

    def issue(self, path: str, message: str, *where: str) -> None:
        loc = None
        for key in (*where, path):
            parts = key.split(".")
            while parts and loc is None:  # fall back to the nearest located ancestor
                loc = self.wf.locations.get(".".join(parts))
                parts.pop()
            if loc is not None:
                break
        self.issues.append(ValidationIssue(path=path, message=message, location=loc))

    def run(self) -> None:
        self.check_ids()
        self.check_start()
        self.check_edges()
        for key, node in self.wf.nodes.items():
            if node.id != key:
                node = msgspec.structs.replace(node, id=key)  # edges name nodes by their key
            self.check_kind(node)
            self.check_exit(node)
            self.check_node_limits(node)
        self.check_graph()
        self.check_schema()
        self.check_policies()
        self.check_governance()
        roll = self.wf.continue_as_new
        if roll is not None and roll.max_records < 10:
            self.issue(
                "continue_as_new.max_records",
                f"continue_as_new.max_records must be at least 10, got {roll.max_records}",
            )

    def check_governance(self) -> None:
        policy = self.wf.governance.redact if self.wf.governance is not None else None
        if policy is not None:
            for subpath, message in redact_policy_problems(policy):
                self.issue(f"governance.redact.{subpath}", message, "governance.redact")

    def target(self, node_id: str, to: str, path: str, what: str, *where: str) -> None:
        if to != END and to not in self.wf.nodes:
            self.broken.add(node_id)
            hint = self.suggest(to, self.wf.nodes)
            self.issue(path, f"node '{node_id}': {what} names unknown node '{to}'{hint}", *where)

    def condition(self, node_id: str, source: str, path: str, *where: str) -> None:
        try:
            compile_condition(source)
        except ConditionSyntaxError as exc:
            self.issue(
                path,
                f"node '{node_id}': invalid condition {source!r} at column {exc.column}: "
                f"{exc.reason}",
                *where,
            )

    def check_ids(self) -> None:
        for key, node in self.wf.nodes.items():
            if node.id != key:
                self.issue(f"nodes.{key}.id", f"node '{key}' has a different id '{node.id}'")
            if "/" in key:  # work items are named execution/node/dispatch: one reading only
                self.issue(f"nodes.{key}", f"node '{key}': a node id may not contain '/'")
            if len(key) > MAX_NODE_ID_CHARS:  # and travel to workers within a bounded frame
                self.issue(
                    f"nodes.{key[:40]}...",
                    f"node id of {len(key)} characters; at most {MAX_NODE_ID_CHARS}",
                )
            if key == END and not isinstance(node.kind, t.EndKind):
                self.issue(f"nodes.{key}", "'end' is reserved for the end of the run; rename it")

    def check_start(self) -> None:
        start = self.wf.start_node
        if start not in self.wf.nodes:
            hint = self.suggest(start, self.wf.nodes)
            self.issue("start_node", f"start node '{start}' does not exist{hint}", "workflow")

    def check_edges(self) -> None:
        for i, edge in enumerate(self.wf.edges):
            path = f"nodes.{edge.from_}.next"
            if edge.from_ not in self.wf.nodes:
                self.issue(f"edges.{i}", f"an edge starts at unknown node '{edge.from_}'")
                continue
            self.target(edge.from_, edge.to, path, "next", f"edges.{i}")
            if edge.condition is not None:
                where = (f"edges.{i}.condition", f"edges.{i}")
                self.condition(edge.from_, edge.condition, path, *where)

    def check_kind(self, node: Node) -> None:
        kind, base = node.kind, f"nodes.{node.id}.kind"
        if isinstance(kind, t.BranchKind):
            for i, case in enumerate(kind.cases):
                self.target(node.id, case.to, f"{base}.cases.{i}.to", "a case")
                if case.when is not None:
                    self.condition(node.id, case.when, f"{base}.cases.{i}.when")
            if kind.default is not None:
                self.target(node.id, kind.default, f"{base}.default", "default")
        elif isinstance(kind, t.ParallelKind):
            if not kind.branches:
                self.issue(f"{base}.branches", f"node '{node.id}': a parallel node needs branches")
            for i, name in enumerate(kind.branches):
                if name == END:
                    self.issue(f"{base}.branches.{i}", f"node '{node.id}': a branch can't be 'end'")
                else:
                    self.target(node.id, name, f"{base}.branches.{i}", "a branch")
        elif isinstance(kind, t.JoinKind):
            self.check_join(node, kind)
        elif isinstance(kind, t.HumanApprovalKind) and kind.fallback_node is not None:
            self.target(node.id, kind.fallback_node, f"{base}.fallback_node", "fallback")
        elif isinstance(kind, t.WaitKind) and kind.on_timeout is not None:
            if kind.duration_secs is None and kind.until is None:
                self.issue(f"{base}.on_timeout", f"node '{node.id}': on_timeout needs a timer")
            self.target(node.id, kind.on_timeout, f"{base}.on_timeout", "on_timeout")
        elif isinstance(kind, t.EvalKind):
            self.check_eval(node, kind, base)

    def check_eval(self, node: Node, kind: t.EvalKind, base: str) -> None:
        if on_fail_mode(kind.on_fail) == "route":
            self.target(node.id, kind.on_fail, f"{base}.on_fail", "on_fail")
        preds = predecessors(self.wf, node.id, self.succ)
        for path, message in eval_problems(self.wf, node, kind, preds):
            self.issue(f"{base}.{path}", message)

    def succ(self, node_id: str) -> list[str]:
        return successors(self.wf, node_id, self.by_source)

    def check_join(self, node: Node, kind: t.JoinKind) -> None:
        for i, name in enumerate(kind.wait_for):
            path = f"nodes.{node.id}.kind.wait_for.{i}"
            if name not in self.wf.nodes:
                self.target(node.id, name, path, "wait_for")
            elif node.id not in successors(self.wf, name, self.by_source):
                self.issue(path, f"node '{node.id}': waits for '{name}', which never routes to it")

    def check_exit(self, node: Node) -> None:
        kind = node.kind
        if isinstance(kind, (*t.TERMINAL_KINDS, t.ParallelKind)):
            return
        if isinstance(kind, t.BranchKind):
            if not kind.cases and kind.default is None:
                self.broken.add(node.id)
                message = f"node '{node.id}': a branch needs cases or a default"
                self.issue(f"nodes.{node.id}.kind", message)
            return
        if not self.by_source.get(node.id):
            self.broken.add(node.id)
            self.issue(
                f"nodes.{node.id}.next",
                f"node '{node.id}' has no way out: add 'next' (use 'next: end' to finish)",
                f"nodes.{node.id}",
            )

    def check_graph(self) -> None:
        nodes = self.wf.nodes
        succ = {
            nid: [s for s in successors(self.wf, nid, self.by_source) if s in nodes or s == END]
            for nid in nodes
        }
        reached = _closure([self.wf.start_node], lambda n: succ.get(n, []))
        for nid, node in nodes.items():
            # A limit node stands ready for guards that may not exist (the jamjet SDK's
            # strategies all have one, guarded or not): unreached, it is no mistake.
            if nid not in reached and not isinstance(node.kind, t.LimitExceededKind):
                start = self.wf.start_node
                self.issue(f"nodes.{nid}", f"node '{nid}' is unreachable from the start '{start}'")
        preds: dict[str, list[str]] = {}
        for nid, targets in succ.items():
            for s in targets:
                preds.setdefault(s, []).append(nid)
        ends = [n for n, node in nodes.items() if isinstance(node.kind, t.TERMINAL_KINDS)]
        ends.append(END)
        finishing = _closure(ends, lambda n: preds.get(n, []))
        # A node that reaches a broken node already has an issue explaining why it is stuck.
        excused = _closure(list(self.broken), lambda n: preds.get(n, []))
        for nid in nodes:
            if nid in reached and nid not in finishing and nid not in excused:
                self.issue(
                    f"nodes.{nid}",
                    f"node '{nid}': no path from it to an end (a loop that never finishes?)",
                )

    def check_schema(self) -> None:
        schema = self.wf.typed_schema()
        for key, field in schema.items():
            path = f"state_schema.{key}"
            if field.type not in STATE_TYPES:
                hint = _suggest(field.type, STATE_TYPES)
                self.issue(
                    path,
                    f"state key '{key}': unknown type '{field.type}'{hint} "
                    f"(expected one of: {', '.join(STATE_TYPES)})",
                )
            elif not value_matches(field.type, field.default):
                self.issue(
                    path, f"state key '{key}': default {field.default!r} is not a {field.type}"
                )
        if not schema:
            return
        for node in self.wf.nodes.values():
            if node.output_key is not None and node.output_key not in schema:
                self.issue(
                    f"nodes.{node.id}.output_key",
                    f"node '{node.id}': output_key '{node.output_key}' is not in the "
                    f"state_schema{self.suggest(node.output_key, schema)}",
                )

    def check_policies(self) -> None:
        for name, policy in self.wf.retry_policies.items():
            self.check_retry(policy, f"retry_policies.{name}", f"retry policy '{name}'")
        for field in t.Timeouts.__struct_fields__:
            value = getattr(self.wf.timeouts, field)
            if value is not None and value <= 0:
                self.issue(f"timeouts.{field}", f"timeouts.{field} must be positive, got {value}")

    def check_wait(self, kind: t.WaitKind, base: str, who: str) -> None:
        if kind.duration_secs is None and kind.until is None and not kind.correlation_key:
            message = f"{who}: a wait node needs a duration, an 'until' time or an event key"
            self.issue(f"{base}.kind", message)
        if kind.until is not None:
            try:
                until_ms(kind.until)
            except ValueError as exc:
                self.issue(f"{base}.kind.until", f"{who}: until {kind.until!r}: {exc}")

    def check_retry(self, policy: RetryPolicy, path: str, what: str) -> None:
        if policy.max_attempts < 1:
            self.issue(path, f"{what}: max_attempts must be at least 1, got {policy.max_attempts}")
        if policy.max_lease_losses < 0:
            losses = policy.max_lease_losses
            self.issue(path, f"{what}: max_lease_losses must not be negative, got {losses}")
        for field in ("backoff_initial_secs", "backoff_max_secs", "jitter"):
            value = getattr(policy, field)
            if value < 0:
                self.issue(path, f"{what}: {field} must not be negative, got {value}")
        if policy.backoff_multiplier < 1:
            value = policy.backoff_multiplier
            self.issue(path, f"{what}: backoff_multiplier must be at least 1, got {value}")

    def check_node_limits(self, node: Node) -> None:
        base, who = f"nodes.{node.id}", f"node '{node.id}'"
        policy = node.retry_policy
        if isinstance(policy, str) and policy not in self.wf.retry_policies:
            known = ", ".join(self.wf.retry_policies) or "none are defined"
            message = f"{who}: unknown retry policy '{policy}' (known: {known})"
            self.issue(f"{base}.retry_policy", message)
        elif isinstance(policy, RetryPolicy):
            self.check_retry(policy, f"{base}.retry_policy", who)
        if node.node_timeout_secs is not None and node.node_timeout_secs <= 0:
            message = f"{who}: timeout must be positive, got {node.node_timeout_secs}"
            self.issue(f"{base}.node_timeout_secs", message)
        kind = node.kind
        limits: list[tuple[str, float | None]] = []
        if isinstance(kind, t.WaitKind):
            limits.append(("duration", kind.duration_secs))
            self.check_wait(kind, base, who)
        if isinstance(kind, t.HumanApprovalKind) and kind.on_timeout not in _ON_TIMEOUT:
            message = f"{who}: on_timeout must be one of {', '.join(_ON_TIMEOUT)}"
            self.issue(f"{base}.kind.on_timeout", f"{message}, got {kind.on_timeout!r}")
        if isinstance(kind, t.HumanApprovalKind | t.AgentKind):
            self.check_approval_access(kind, base, who)
        if isinstance(kind, t.AgentKind):
            for i, name in enumerate(kind.requires_approval):
                if name not in kind.tools:
                    self.issue(
                        f"{base}.kind.requires_approval.{i}",
                        f"{who}: requires_approval names {name!r}, which is not one of its "
                        f"tools ({', '.join(kind.tools) or 'none'})",
                    )
        for where, mapping in (("input", node.input), ("kind.input_mapping", _mapping_of(kind))):
            for param, value in mapping.items():
                problem = reference_problem(value)
                if problem is not None:
                    self.issue(f"{base}.{where}.{param}", f"{who}: input {param!r}: {problem}")
        if isinstance(kind, t.HumanApprovalKind | t.A2aTaskKind):
            limits.append(("timeout", kind.timeout_secs))
        if isinstance(kind, t.EvalKind) and kind.max_retries < 0:
            self.issue(f"{base}.kind.max_retries", f"{who}: max_retries must not be negative")
        for field, value in limits:
            if value is not None and value < 0:
                self.issue(f"{base}.{field}", f"{who}: {field} must not be negative, got {value}")

    def check_approval_access(
        self, kind: t.HumanApprovalKind | t.AgentKind, base: str, who: str
    ) -> None:
        """Approver entries that can name someone; patchable keys the state declares."""
        for i, entry in enumerate(kind.approvers or ()):
            problem = approver_problem(entry)
            if problem is not None:
                self.issue(f"{base}.kind.approvers.{i}", f"{who}: {problem}")
        if kind.approvers is not None and not kind.approvers:
            self.issue(
                f"{base}.kind.approvers",
                f"{who}: an empty approvers list lets nobody decide; leave it out to let anyone "
                "authenticated decide",
            )
        patchable = kind.patchable if isinstance(kind, t.HumanApprovalKind) else []
        schema = self.wf.typed_schema()
        for i, key in enumerate(patchable):
            if not key:
                self.issue(f"{base}.kind.patchable.{i}", f"{who}: a patchable key is empty")
            elif schema and key not in schema:
                self.issue(
                    f"{base}.kind.patchable.{i}",
                    f"{who}: patchable key {key!r} is not in the state_schema"
                    f"{self.suggest(key, schema)}",
                )


def _mapping_of(kind: t.NodeKind) -> Mapping[str, object]:
    mapping = getattr(kind, "input_mapping", None)
    return mapping if isinstance(mapping, Mapping) else {}


_ON_TIMEOUT = ("fail", "approve", "reject")


def until_ms(text: str) -> int:
    """A wait's ``until`` as epoch milliseconds; ValueError unless it is an ISO 8601 time with
    a zone offset (a zone-less time would mean something different on every machine)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("it has no time zone offset (write e.g. 2026-12-01T09:00:00+00:00)")
    return int(when.timestamp() * 1000)


def _closure(start: list[str], step: Callable[[str], Iterable[str]]) -> set[str]:
    """Every name reachable from ``start`` by repeatedly applying ``step``."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(step(name))
    return seen
