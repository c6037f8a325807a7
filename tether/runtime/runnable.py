"""What this runtime can execute: a clear refusal up front beats a run that fails midway.

Example::

    check_runnable(workflow, tools)   # raises UnsupportedNode or UnknownTool

A python_fn step whose function is not registered is not refused: its items wait on its queue
(``general`` unless labelled) for a remote worker such as ``jamjet worker``.
"""

from __future__ import annotations

import logging

from tether.errors import UnsupportedNode
from tether.ir.errors import ValidationIssue, WorkflowInvalid
from tether.ir.types import (
    CONTROL_KINDS,
    IO_KINDS,
    HumanApprovalKind,
    PythonFnKind,
    ToolKind,
    WaitKind,
    Workflow,
)
from tether.runtime.announced_tools import AnnouncedTools, unserved_tools, unserved_warning
from tether.runtime.node_kinds import NodeKinds
from tether.runtime.parallel_blocks import analyze_parallel_blocks
from tether.runtime.tools import ToolRegistry, UnknownTool
from tether.runtime.work import DEFAULT_QUEUE, queue_of

_log = logging.getLogger(__name__)

_WORK_KINDS = (ToolKind, PythonFnKind)
#: Resolved by the execution itself over time: no worker, no lease.
_WAIT_KINDS = (WaitKind, HumanApprovalKind)


def check_runnable(
    wf: Workflow,
    tools: ToolRegistry,
    others: QueueUsers | None = None,
    node_kinds: NodeKinds | None = None,
    announced: AnnouncedTools | None = None,
) -> None:
    """Every node is a kind this runtime executes (I/O kinds through ``node_kinds``, which
    checks their models, tools and templates), every tool it names is registered, its
    parallel blocks have one meaning (see :mod:`tether.runtime.parallel_blocks`), and no
    queue is both remote-only and served by this engine, here or in ``others`` (the
    workflows this runtime has loaded).

    With ``announced`` (a runtime with workers) a tool the engine lacks is bound by what its
    workers announced, and one nobody announced yet is let through with a warning: its runs
    wait for a worker (see :mod:`tether.runtime.announced_tools`)."""
    unsupported = unsupported_nodes(wf, node_kinds)
    if unsupported:
        hint = (
            "; model, agent, http, mcp_tool and eval nodes need the agent kinds (tether.Runtime "
            "has them)"
            if node_kinds is None
            else ""
        )
        raise UnsupportedNode(
            f"workflow {wf.ref} cannot run in this runtime: "
            + "; ".join(unsupported)
            + " (supported: tool, python_fn, branch, condition, parallel, join, end, wait,"
            f" human_approval{', ' + _io_names() if node_kinds is not None else ''}){hint}"
        )
    if node_kinds is not None:
        io_problems = node_kinds.check(wf, tools)
        if io_problems:
            raise WorkflowInvalid(io_problems, source=wf.ref)
    if announced is not None:
        unserved, misfits = unserved_tools(wf, tools, announced)
        if misfits:
            issues = [ValidationIssue(path="nodes", message=m) for m in misfits]
            raise WorkflowInvalid(issues, source=wf.ref)
        on_default = {
            tool: nodes
            for tool, nodes in unserved.items()
            if any(queue_of(wf.nodes[n]) == DEFAULT_QUEUE for n in nodes)
        }
        if on_default:  # most likely a module the engine was not started with
            _unknown_tools(wf, tools, on_default)
        if unserved:
            _log.warning("%s", unserved_warning(wf, unserved))
    else:
        _check_tools_registered(wf, tools)
    check_queues(wf, tools, others or QueueUsers(), remote_tools=announced is not None)
    _, problems = analyze_parallel_blocks(wf)
    if problems:
        issues = [ValidationIssue(path="nodes", message=m) for m in problems]
        raise WorkflowInvalid(issues, source=wf.ref)


def _check_tools_registered(wf: Workflow, tools: ToolRegistry) -> None:
    missing: dict[str, list[str]] = {}  # one problem, the nodes it is at
    for node in wf.nodes.values():
        # A python_fn step the engine has no function for is run by remote workers (e.g.
        # `jamjet worker`), which read the state themselves; a tool's arguments are bound here
        # by its signature, so without workers to announce it a tool must be registered.
        if isinstance(node.kind, ToolKind):
            try:
                tools.for_node(node)
            except UnknownTool as exc:
                missing.setdefault(str(exc), []).append(repr(node.id))
    if missing:
        raise UnknownTool(
            f"workflow {wf.ref}: "
            + "; ".join(
                f"{problem}, used by node{'s' if len(at) > 1 else ''} {', '.join(at)}"
                for problem, at in missing.items()
            )
        )


def _unknown_tools(wf: Workflow, tools: ToolRegistry, unserved: dict[str, list[str]]) -> None:
    """Refuse tools nobody has on the default queue, saying both ways to serve them."""
    known = ", ".join(tools.names()) or "none"
    named = "; ".join(
        f"{tool!r} (used by node{'s' if len(at) > 1 else ''} {', '.join(repr(n) for n in at)})"
        for tool, at in unserved.items()
    )
    many = len(unserved) > 1
    raise UnknownTool(
        f"workflow {wf.ref}: tool{'s' if many else ''} {named} {'are' if many else 'is'} not "
        f"registered (registered tools: {known}) and no worker announces "
        f"{'them' if many else 'it'}: start the engine with the module that defines "
        f"{'them' if many else 'it'} (`tether dev --modules ...`), or serve "
        f"{'them' if many else 'it'} from workers only on a queue of its own (label the nodes "
        "`labels: {queue: NAME}` and start `tether worker --queue NAME --modules ...`)"
    )


def unsupported_nodes(wf: Workflow, node_kinds: NodeKinds | None) -> list[str]:
    """What keeps ``wf`` from running here for the kinds of its nodes, a line per node.

    Example::

        unsupported_nodes(wf, AgentKinds())     # ["node 'ask' is a 'a2a_task' node"]
    """
    return [
        f"node {node.id!r} is a {node.kind.__struct_config__.tag!r} node"
        for node in wf.nodes.values()
        if not isinstance(node.kind, (*_WORK_KINDS, *CONTROL_KINDS, *_WAIT_KINDS))
        and (node_kinds is None or not node_kinds.handles(node))
    ]


def _io_names() -> str:
    return ", ".join(str(k.__struct_config__.tag) for k in IO_KINDS)


class QueueUsers:
    """Which loaded workflow first used each queue for remote-only steps and for steps the
    engine runs itself. A queue in both would hand the engine's own steps (their inputs,
    maybe secrets, and the right to commit their outputs) to remote workers such as
    ``jamjet worker``, and keep them from the in-process pool."""

    def __init__(self) -> None:
        self.remote: dict[str, str] = {}
        self.local: dict[str, str] = {}

    def add(self, wf: Workflow, tools: ToolRegistry, *, remote_tools: bool = False) -> None:
        remote, local = queues_of(wf, tools, remote_tools=remote_tools)
        for queue in remote:
            self.remote.setdefault(queue, wf.ref)
        for queue in local:
            self.local.setdefault(queue, wf.ref)


def queues_of(
    wf: Workflow, tools: ToolRegistry, *, remote_tools: bool = False
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The queues of ``wf``'s remote-only steps and of the steps this engine runs, each with
    its node ids. ``remote_tools``: a tool node whose tool the engine lacks is remote-only
    (its workers announce it); otherwise it counts as the engine's (and is refused)."""
    remote: dict[str, list[str]] = {}
    local: dict[str, list[str]] = {}
    for node in wf.nodes.values():
        remote_fn = isinstance(node.kind, PythonFnKind)
        if remote_fn or (remote_tools and isinstance(node.kind, ToolKind)):
            try:
                tools.for_node(node)
            except UnknownTool:  # run by remote workers only (a tool: announced by them)
                remote.setdefault(queue_of(node, remote=remote_fn), []).append(node.id)
                continue
        if isinstance(node.kind, (*_WORK_KINDS, *IO_KINDS)):
            local.setdefault(queue_of(node), []).append(node.id)
    return remote, local


def check_queues(
    wf: Workflow, tools: ToolRegistry, others: QueueUsers, *, remote_tools: bool = False
) -> None:
    """A python_fn step the engine has no function for (and, with ``remote_tools``, a tool
    only workers announce) waits on its queue for a remote worker, and the in-process pool
    stops taking that queue: refuse a queue shared with a node the engine runs itself, in
    this workflow or in another one loaded here."""
    remote, local = queues_of(wf, tools, remote_tools=remote_tools)
    clashes = [
        f"queue {q!r}: remote-only steps {remote[q]} and steps this engine runs {local[q]}"
        for q in sorted(remote.keys() & local.keys())
    ]
    clashes += [
        f"queue {q!r}: remote-only steps {remote[q]} here, and workflow {others.local[q]} "
        "runs its steps on this engine on that queue"
        for q in sorted(remote.keys() & others.local.keys())
        if others.local[q] != wf.ref
    ]
    clashes += [
        f"queue {q!r}: steps this engine runs {local[q]} here, and workflow "
        f"{others.remote[q]} has remote-only steps on that queue (a remote worker would be "
        "handed these steps)"
        for q in sorted(local.keys() & others.remote.keys())
        if others.remote[q] != wf.ref
    ]
    if DEFAULT_QUEUE in remote and DEFAULT_QUEUE not in local:
        # Every workflow's tools default to it: the pool would stop serving them all.
        clashes.append(
            f"queue {DEFAULT_QUEUE!r} is the default queue of every tool this engine runs: "
            f"remote-only steps {remote[DEFAULT_QUEUE]} need a queue of their own (label "
            "them `labels: {queue: NAME}` and start `tether worker --queue NAME`)"
        )
    if clashes:
        issues = [ValidationIssue(path="nodes", message=c) for c in clashes]
        raise WorkflowInvalid(issues, source=wf.ref)
    for queue, nodes in remote.items():
        _log.warning(
            "workflow %s: %s have no function in this engine; their items wait on queue %r "
            "for a remote worker (`tether worker`, `jamjet worker`)",
            wf.ref, nodes, queue,
        )  # fmt: skip
