"""The builders of the work node kinds in workflow YAML, one per ``type``, and the keys each
accepts: tools (Python and MCP), models, http calls, waits, human approvals, evals, agents, A2A
tasks, memory and sandboxed code.

A builder reads one node spec into its IR kind and raises ``ValueProblem`` with the sub-path of
the offending key; into ``paths`` it puts the YAML sub-path of each kind field that names
another node or a scorer, so that validation can point at that line.

Kept apart from :mod:`tether.ir.yaml_nodes`, which checks a spec's keys against its type and
builds the control kinds (branch, parallel, join, condition, end), the fields every node shares
and the routes: these builders are most of the dialect, and each new node kind adds one. What
every builder needs (``Spec``, ``YPath``, ``_sub`` and ``_io``) lives here because
:mod:`tether.ir.yaml_nodes` imports this module, not the other way round.

Example::

    >>> allowed, build = WORK_KINDS["tool"]
    >>> build("inc", {"type": "tool", "tool": "add_one"}, {}).tool_ref
    'add_one'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tether.ir import eval_spec
from tether.ir import types as t
from tether.ir.types import NodeKind
from tether.ir.yaml_values import (
    ValueProblem,
    as_mapping,
    as_str,
    as_str_list,
    convert,
    parse_duration,
)

YPath = tuple[str | int, ...]
Spec = Mapping[str, Any]
KindBuilder = Callable[[str, Spec, dict[str, YPath]], NodeKind]

_WORK_COMMON = frozenset(
    {"type", "description", "labels", "retry", "retry_policy", "timeout", "output_key", "next"}
)


def _sub(key: str | int, parse: Callable[..., Any], *args: Any) -> Any:
    """Run a parser on the value under ``key``, prefixing ``key`` to any problem's path."""
    try:
        return parse(*args)
    except ValueProblem as exc:
        raise ValueProblem((key, *exc.subpath), str(exc)) from None


def _io(spec: Spec) -> dict[str, Any]:
    return as_mapping(spec.get("input", spec.get("arguments")), "input")


def _tool(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    if "server" in spec:  # the jamjet docs' MCP spelling: type tool + server + tool
        return _mcp_tool(node_id, spec, paths)
    ref = spec.get("tool", spec.get("tool_ref", node_id))
    return t.ToolKind(
        tool_ref=as_str(ref, "tool"),
        input_mapping=_io(spec),
        output_schema=spec.get("output_schema", ""),
    )


def _mcp_tool(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    return t.McpToolKind(
        server=as_str(spec.get("server", ""), "server"),
        tool=as_str(spec.get("tool", ""), "tool"),
        input_mapping=_io(spec),
        output_schema=spec.get("output_schema", ""),
    )


def _python_fn(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    for key in ("module", "function"):
        if key not in spec:
            raise ValueProblem((), f"a python_fn node needs '{key}'")
    return t.PythonFnKind(
        module=as_str(spec["module"], "module"),
        function=as_str(spec["function"], "function"),
        output_schema=spec.get("output_schema", ""),
    )


def _model(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    system = spec.get("system_prompt", spec.get("system"))
    return t.ModelKind(
        model_ref=as_str(spec.get("model", spec.get("model_ref", "default_chat")), "model"),
        prompt_ref=as_str(spec.get("prompt_ref", ""), "prompt_ref"),
        prompt=None if spec.get("prompt") is None else as_str(spec["prompt"], "prompt"),
        system_prompt=None if system is None else as_str(system, "system_prompt"),
        output_schema=spec.get("output_schema", ""),
        temperature=_sub("temperature", convert, spec.get("temperature"), float | None, "temp"),
        max_tokens=_sub("max_tokens", convert, spec.get("max_tokens"), int | None, "max_tokens"),
    )


_HTTP_FIELDS = ("url", "method", "headers", "body", "expect_status", "response")


def _http(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    if "url" not in spec:
        raise ValueProblem((), "an http node needs 'url'")
    fields = {k: spec[k] for k in _HTTP_FIELDS if k in spec}
    if isinstance(fields.get("expect_status"), int):
        fields["expect_status"] = [fields["expect_status"]]
    return convert(fields, t.HttpKind, "http node")


#: The jamjet dialect's wait timeouts, in seconds per unit.
_WAIT_TIMEOUTS = {"timeout_hours": 3600, "timeout_minutes": 60, "timeout_seconds": 1}


def _wait(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    duration = spec.get("duration", spec.get("duration_secs"))
    secs = _wait_timeout(spec)
    if secs is not None:
        if duration is not None:
            raise ValueProblem((), "give 'duration' or a timeout_hours/minutes/seconds, not both")
        duration = secs
    event = spec.get("event", spec.get("correlation_key"))
    if duration is None and spec.get("until") is None and event is None:
        raise ValueProblem((), "a wait node needs 'duration', 'until' or 'event'")
    on_timeout = spec.get("on_timeout")
    if on_timeout is not None:
        paths["kind.on_timeout"] = ("on_timeout",)
    return t.WaitKind(
        duration_secs=None if duration is None else _sub("duration", parse_duration, duration),
        until=None if spec.get("until") is None else str(spec["until"]),
        correlation_key=None if event is None else as_str(event, "event"),
        on_timeout=None if on_timeout is None else _sub("on_timeout", as_str, on_timeout, "node"),
    )


def _wait_timeout(spec: Spec) -> float | None:
    given = [key for key in _WAIT_TIMEOUTS if key in spec]
    if len(given) > 1:
        raise ValueProblem((given[1],), f"give one of {', '.join(given)}")
    if not given:
        return None
    value = spec[given[0]]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueProblem((given[0],), f"{given[0]} must be a positive number, got {value!r}")
    return float(value * _WAIT_TIMEOUTS[given[0]])


def _human_approval(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    fallback = spec.get("fallback", spec.get("fallback_node"))
    if fallback is not None:
        paths["kind.fallback_node"] = ("fallback" if "fallback" in spec else "fallback_node",)
    timeout = spec.get("timeout")
    on_timeout = _sub("on_timeout", as_str, spec.get("on_timeout", "fail"), "on_timeout")
    if on_timeout not in APPROVAL_TIMEOUT_OUTCOMES:
        raise ValueProblem(
            ("on_timeout",),
            f"on_timeout must be one of {', '.join(APPROVAL_TIMEOUT_OUTCOMES)}, got {on_timeout!r}",
        )
    return t.HumanApprovalKind(
        description=as_str(spec.get("description", f"Approval required for {node_id}"), "desc"),
        timeout_secs=None if timeout is None else round(_sub("timeout", parse_duration, timeout)),
        fallback_node=None if fallback is None else as_str(fallback, "fallback"),
        on_timeout=on_timeout,
        approvers=(
            None
            if spec.get("approvers") is None
            else _sub("approvers", as_str_list, spec["approvers"], "approvers")
        ),
        patchable=_sub("patchable", as_str_list, spec.get("patchable", []), "patchable"),
    )


#: What a human-approval node without a fallback does when its timeout passes.
APPROVAL_TIMEOUT_OUTCOMES = ("fail", "approve", "reject")


def _eval(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    """Scorers are checked here (so a bad one names its line) and kept as written; a
    retrying eval without ``max_retries`` gets ``DEFAULT_RETRIES`` (see tether.ir.eval_spec)."""
    fields = {k: spec[k] for k in ("scorers", "on_fail", "max_retries", "input_expr") if k in spec}
    scorers = fields.get("scorers", [])
    if not isinstance(scorers, list) or not scorers:
        raise ValueProblem(("scorers",), "an eval node needs 'scorers', a list of scorers")
    _sub("scorers", eval_spec.parse_scorers, scorers)
    for i in range(len(scorers)):
        paths[f"kind.scorers.{i}"] = ("scorers", i)
    mode = eval_spec.on_fail_mode(str(fields.get("on_fail", "")))
    if mode in (eval_spec.RETRY, eval_spec.FEEDBACK) and "max_retries" not in fields:
        fields["max_retries"] = eval_spec.DEFAULT_RETRIES
    return convert(fields, t.EvalKind, "eval node")


def _agent(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    ref = spec.get("agent_ref", spec.get("agent", node_id))
    system = spec.get("instructions", spec.get("system"))
    return t.AgentKind(
        agent_ref=as_str(ref, "agent_ref"),
        input_mapping=_io(spec),
        output_schema=spec.get("output_schema", ""),
        model=as_str(spec.get("model", ""), "model"),
        instructions="" if system is None else as_str(system, "instructions"),
        prompt=None if spec.get("prompt") is None else as_str(spec["prompt"], "prompt"),
        tools=_sub("tools", as_str_list, spec.get("tools", []), "tools"),
        budget=None if spec.get("budget") is None else _sub("budget", parse_budget, spec["budget"]),
        temperature=_sub("temperature", convert, spec.get("temperature"), float | None, "temp"),
        max_tokens=_sub("max_tokens", convert, spec.get("max_tokens"), int | None, "max_tokens"),
        requires_approval=_sub(
            "requires_approval", as_str_list, spec.get("requires_approval", []), "requires_approval"
        ),
        approvers=None
        if spec.get("approvers") is None
        else _sub("approvers", as_str_list, spec["approvers"], "approvers"),
        approval_timeout_secs=None
        if spec.get("approval_timeout") is None
        else _sub("approval_timeout", parse_duration, spec["approval_timeout"]),
    )


def parse_budget(raw: Any) -> t.Budget:
    """A ``budget`` mapping: ``max_cost_usd``, ``max_tokens``, ``max_iterations``,
    ``wall_clock`` (a duration such as ``5m``)."""
    fields = dict(as_mapping(raw, "budget"))
    if "wall_clock" in fields:
        fields["wall_clock_secs"] = _sub("wall_clock", parse_duration, fields.pop("wall_clock"))
    return convert(fields, t.Budget, "budget")


def _a2a_task(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    fields = {
        k: spec[k]
        for k in ("remote_agent", "skill", "output_schema", "stream", "on_input_required")
        if k in spec
    }
    if "remote_agent" in spec and "agent_uri" in spec:
        raise ValueProblem((), "an a2a_task node names its agent once: remote_agent or agent_uri")
    # jamjet spells them agent_uri and timeout_seconds
    fields["remote_agent"] = spec.get("remote_agent", spec.get("agent_uri", ""))
    fields["input_mapping"] = _io(spec)
    timeouts = [k for k in ("timeout", "timeout_seconds") if spec.get(k) is not None]
    if len(timeouts) > 1:
        raise ValueProblem((), "an a2a_task node has one timeout: timeout or timeout_seconds")
    for key in timeouts:
        fields["timeout_secs"] = round(_sub(key, parse_duration, spec[key]))
    return convert(fields, t.A2aTaskKind, "a2a_task node")


def _memory_write(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    for key in ("user", "subject", "content"):
        if key not in spec:
            raise ValueProblem((), f"a memory_write node needs '{key}' ($path, a template or text)")
    fields = {k: spec[k] for k in ("user", "subject", "content", "supersedes") if k in spec}
    return convert(fields, t.MemoryWriteKind, "memory_write node")


def _memory_retrieval(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    if "user" not in spec:
        raise ValueProblem((), "a memory_retrieval node needs 'user' ($path, a template or text)")
    fields = {k: spec[k] for k in ("user", "topic", "budget_tokens") if k in spec}
    kind = convert(fields, t.MemoryRetrievalKind, "memory_retrieval node")
    if kind.budget_tokens < 0:
        raise ValueProblem(("budget_tokens",), "budget_tokens must not be negative")
    return kind


def _run_code(node_id: str, spec: Spec, paths: dict[str, YPath]) -> NodeKind:
    if "code" not in spec:
        raise ValueProblem((), "a run_code node needs 'code' (the code, or $path to it in state)")
    sandbox = _sub("sandbox", as_str, spec.get("sandbox", "local"), "sandbox")
    if sandbox not in ("local", "remote"):
        raise ValueProblem(("sandbox",), f"sandbox must be 'local' or 'remote', got {sandbox!r}")
    return t.RunCodeKind(
        code=_sub("code", as_str, spec["code"], "code"),
        sandbox=sandbox,
        limits=_sub("limits", convert, _sub("limits", as_mapping, spec.get("limits"), "limits"),
                    dict[str, float], "limits"),
        input_mapping=_io(spec),
    )  # fmt: skip


_IO = frozenset({"input", "arguments", "output_schema"})
_SYSTEM = frozenset({"system_prompt", "system"})
WORK_KINDS: dict[str, tuple[frozenset[str], KindBuilder]] = {
    "tool": (_WORK_COMMON | _IO | {"tool", "tool_ref", "server"}, _tool),
    "python_fn": (_WORK_COMMON | _IO | {"module", "function"}, _python_fn),
    "mcp_tool": (_WORK_COMMON | _IO | {"server", "tool"}, _mcp_tool),
    "model": (
        _WORK_COMMON
        | _IO
        | {"model", "model_ref", "prompt", "prompt_ref", "temperature", "max_tokens"}
        | _SYSTEM,
        _model,
    ),
    "http": (_WORK_COMMON | {*_HTTP_FIELDS, "input"}, _http),
    "wait": (
        _WORK_COMMON
        | {"duration", "duration_secs", "until", "event", "correlation_key", "on_timeout"}
        | set(_WAIT_TIMEOUTS),
        _wait,
    ),
    "human_approval": (
        _WORK_COMMON | {"fallback", "fallback_node", "on_timeout", "approvers", "patchable"},
        _human_approval,
    ),
    "eval": (_WORK_COMMON | {"scorers", "on_fail", "max_retries", "input_expr"}, _eval),
    "agent": (
        _WORK_COMMON
        | _IO
        | {"agent_ref", "agent", "model", "instructions", "system", "prompt", "tools", "budget"}
        | {"requires_approval", "approvers", "approval_timeout"}
        | {"temperature", "max_tokens"},
        _agent,
    ),
    "a2a_task": (
        _WORK_COMMON
        | _IO
        | {"remote_agent", "agent_uri", "timeout_seconds", "skill", "stream"}
        | {"on_input_required"},
        _a2a_task,
    ),
    "run_code": (_WORK_COMMON | {"code", "sandbox", "limits", "input"}, _run_code),
    "memory_write": (_WORK_COMMON | {"user", "subject", "content", "supersedes"}, _memory_write),
    "memory_retrieval": (_WORK_COMMON | {"user", "topic", "budget_tokens"}, _memory_retrieval),
}
