"""Tools the engine does not have, known from the workers that announce them.

A ``tool`` node's arguments are bound on the engine at hand-out (and journaled there, I12),
so the engine must know the tool's parameters. A runtime with a worker transport (``tether
dev``, ``Runtime(transports=[ZmqFleet(...)])``) need not import the tool's module: each worker
announces the tools it serves when it joins (name, parameters, JSON schema, its queues), and
the engine binds from that. The rule, for a node whose tool the engine itself lacks:

* **announced** by a joined worker (or by one that has left, during this engine's life): the
  node binds by the announced parameters; at registration an input the parameters lack is
  refused, as for a registered tool. Several workers announcing different parameters for one
  name: the earliest joined still serving it wins; the others are logged.
* **not announced**: the workflow is accepted with a warning that names the tools and their
  nodes; a run reaching such a node is held (nothing journaled) until a worker announcing the
  tool joins, then goes on. Its hold is said by ``GET /executions/{id}`` (``held``),
  ``tether run`` and ``tether inspect``: "waiting for a worker serving tool X on queue Y".
* Without a worker transport nobody can announce anything: an unknown tool is refused.

Announcements live as long as the engine process: after a restart the workers rejoin (in well
under a second) and announce again, and runs held meanwhile go on when they do.

Example::

    announced = AnnouncedTools()
    announced.join("w1", ["gpu"], [ToolSignature("embed", ("text",), frozenset({"text"}))])
    announced.signature("embed").params     # ("text",)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from tether.ir.types import ToolKind, Workflow
from tether.runtime.tools import ArgumentBinder, BindError, ToolRegistry, UnknownTool
from tether.runtime.work import queue_of

__all__ = [
    "AnnouncedTools",
    "Hold",
    "ToolAwaited",
    "ToolServed",
    "ToolSignature",
    "unserved_tools",
    "unserved_warning",
]

_log = logging.getLogger(__name__)


class ToolSignature(msgspec.Struct, frozen=True):
    """What the engine needs of a tool it does not have: how to bind its arguments.

    ``schema`` is the JSON schema of its parameters as the worker made it (shown, not
    enforced: the tool checks its own arguments where it runs).
    """

    name: str
    params: tuple[str, ...] = ()
    required: frozenset[str] = frozenset()
    accepts_kwargs: bool = False
    schema: dict[str, Any] = {}

    def same_binding(self, other: ToolSignature) -> bool:
        """Do both bind the same arguments (the schema aside)?"""
        return (self.params, self.required, self.accepts_kwargs) == (
            other.params,
            other.required,
            other.accepts_kwargs,
        )


class ToolAwaited(UnknownTool):
    """A tool node whose tool no worker has announced yet: its run is held, not failed."""

    def __init__(self, tool: str, queue: str) -> None:
        super().__init__(f"waiting for a worker serving tool {tool!r} on queue {queue!r}")
        self.tool = tool
        self.queue = queue


class ToolServed(msgspec.Struct, frozen=True, gc=False):
    """Told to a held execution: a tool it waited for is announced now; plan again."""


@dataclass(frozen=True, slots=True)
class Hold:
    """A node of a run held until a worker serving its tool joins."""

    node_id: str
    tool: str
    queue: str

    @property
    def reason(self) -> str:
        return f"waiting for a worker serving tool {self.tool!r} on queue {self.queue!r}"


class AnnouncedTools:
    """The tools joined workers announced, and the runs held for tools not announced yet.

    ``on_change`` is called when the signature a tool binds by changes (the engine drops the
    bindings it made); ``on_served`` with the executions held for a tool that is now announced
    (the engine tells each to plan again). Both are set by the runtime that owns the table.
    """

    def __init__(self) -> None:
        #: tool -> worker id -> what that worker announced (in join order).
        self._by_tool: dict[str, dict[str, ToolSignature]] = {}
        #: tool -> the queues each serving worker named (None: every queue).
        self._queues: dict[str, dict[str, frozenset[str] | None]] = {}
        #: The signature each tool bound by last: kept when its workers leave.
        self._last: dict[str, ToolSignature] = {}
        #: execution id -> node id -> its hold.
        self._holds: dict[str, dict[str, Hold]] = {}
        self.on_change: Callable[[], None] = lambda: None
        self.on_served: Callable[[list[str]], None] = lambda _: None

    # -- workers ------------------------------------------------------------------------

    def join(
        self, worker_id: str, queues: Iterable[str] | None, signatures: Iterable[ToolSignature]
    ) -> None:
        """A worker joined announcing ``signatures`` (replacing what it announced before)."""
        # Its earlier announcements go first: that alone may change a binding.
        changed = self._forget(worker_id)
        served = frozenset(queues) if queues is not None else None
        for sig in signatures:
            workers = self._by_tool.setdefault(sig.name, {})
            binding = next(iter(workers.values()), None) or self._last.get(sig.name)
            if binding is not None and not binding.same_binding(sig):
                _log.warning(
                    "worker %s announces tool %r with parameters %s; the engine binds it by %s "
                    "(announced first), so its items may not suit this worker",
                    worker_id, sig.name, _shown(sig), _shown(binding),
                )  # fmt: skip
            workers[worker_id] = sig
            self._queues.setdefault(sig.name, {})[worker_id] = served
            changed |= self._settle(sig.name)
        if changed:
            self.on_change()
        self._release_served()

    def leave(self, worker_id: str) -> None:
        """A worker left: its announcements no longer count (the last binding is kept)."""
        if self._forget(worker_id):
            self.on_change()

    def _forget(self, worker_id: str) -> bool:
        """Drop what ``worker_id`` announced; True when a tool's binding changed by it."""
        changed = False
        for name, workers in self._by_tool.items():
            if workers.pop(worker_id, None) is not None:
                self._queues[name].pop(worker_id, None)
                changed |= self._settle(name)
        return changed

    def _settle(self, name: str) -> bool:
        """Make ``_last`` the signature ``name`` binds by now; True when it changed."""
        workers = self._by_tool.get(name)
        current = next(iter(workers.values()), None) if workers else None
        if current is None:
            return False  # nobody serves it now: it binds as it did
        before = self._last.get(name)
        self._last[name] = current
        return before is None or not before.same_binding(current)

    def signature(self, name: str) -> ToolSignature | None:
        """The parameters ``name`` binds by, or None when no worker ever announced it."""
        return self._last.get(name)

    def serving(self) -> dict[str, dict[str, Any]]:
        """Each tool announced now: its binding, and the workers serving it with their
        queues (None: every queue). For ``GET /workers``."""
        found: dict[str, dict[str, Any]] = {}
        for name, workers in self._by_tool.items():
            sig = self._last.get(name)
            if not workers or sig is None:
                continue
            found[name] = {
                "params": list(sig.params),
                "required": sorted(sig.required),
                "accepts_kwargs": sig.accepts_kwargs,
                "schema": sig.schema,
                "workers": {
                    w: sorted(q) if q is not None else None for w, q in self._queues[name].items()
                },
            }
        return found

    # -- held runs ----------------------------------------------------------------------

    def hold(self, execution_id: str, node_id: str, tool: str, queue: str) -> None:
        """A run cannot hand out ``node_id`` until ``tool`` is announced."""
        self._holds.setdefault(execution_id, {})[node_id] = Hold(node_id, tool, queue)

    def release(self, execution_id: str) -> None:
        """The run ended (or moved on): forget its holds."""
        self._holds.pop(execution_id, None)

    def holds_of(self, execution_id: str) -> list[Hold]:
        """What the run waits for, node by node (empty when it is not held)."""
        found = self._holds.get(execution_id)
        return list(found.values()) if found else []

    def holding(self, execution_id: str) -> bool:
        return execution_id in self._holds

    def _release_served(self) -> None:
        served = [
            eid
            for eid, holds in self._holds.items()
            if any(h.tool in self._last for h in holds.values())
        ]
        for eid in served:
            # Planned again, each re-holds what is still not served.
            del self._holds[eid]
        if served:
            self.on_served(served)


def unserved_tools(
    wf: Workflow, tools: ToolRegistry, announced: AnnouncedTools
) -> tuple[dict[str, list[str]], list[str]]:
    """The tools of ``wf`` that neither the engine nor any worker has (tool -> its nodes),
    and the problems of nodes whose input does not fit an announced tool's parameters."""
    unserved: dict[str, list[str]] = {}
    problems: list[str] = []
    for node in wf.nodes.values():
        kind = node.kind
        if not isinstance(kind, ToolKind):
            continue
        try:
            tools.for_node(node)
            continue
        except UnknownTool:
            pass
        sig = announced.signature(kind.tool_ref)
        if sig is None:
            unserved.setdefault(kind.tool_ref, []).append(node.id)
            continue
        try:
            ArgumentBinder(sig, node)
        except BindError as exc:
            problems.append(f"{exc} (as its workers announced it)")
    return unserved, problems


def unserved_warning(wf: Workflow, unserved: Mapping[str, list[str]]) -> str:
    """One line naming the tools no one serves yet, their nodes and queues."""
    parts = []
    for tool, nodes in unserved.items():
        queues = sorted({queue_of(wf.nodes[n]) for n in nodes})
        at = ", ".join(repr(n) for n in nodes)
        parts.append(f"tool {tool!r} (node{'s' if len(nodes) > 1 else ''} {at}, queue "
                     f"{', '.join(repr(q) for q in queues)})")  # fmt: skip
    return (
        f"workflow {wf.ref}: no engine module and no joined worker serves "
        + "; ".join(parts)
        + ": its runs wait at these nodes until a worker serving the tool joins"
    )


def _shown(sig: ToolSignature) -> str:
    params = [p if p in sig.required else f"{p}=..." for p in sig.params]
    if sig.accepts_kwargs:
        params.append("**kwargs")
    return f"({', '.join(params)})"
