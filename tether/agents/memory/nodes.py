"""The ``memory_write`` and ``memory_retrieval`` nodes: their arguments bound from state at
hand-out (journaled in ``node_scheduled``), and the built-in tools that run them on the
engine's in-process pool, where the journal's database is.

A write's fact id is derived from the execution, the node and the visit (the dispatch of the
visit's first attempt), so the hand-out re-sent after a crash, or a retry of the same visit,
writes nothing twice (I4), while a loop that comes back to the node writes a new fact.

Example::

    nodes:
      remember: {type: memory_write, user: $user, subject: location, content: $city, next: recall}
      recall: {type: memory_retrieval, user: $user, topic: "{{ state.question }}",
               budget_tokens: 400, output_key: memory, next: end}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from tether.agents.memory.api import Memory
from tether.agents.state_inputs import bind_input
from tether.errors import NonRetryableError
from tether.ir.errors import ValidationIssue
from tether.ir.types import MemoryRetrievalKind, MemoryWriteKind, Node, Workflow
from tether.runtime.tools import Tool, ToolRegistry
from tether.runtime.work_context import current_work_item

MEMORY_WRITE_TOOL: Final = "tether.memory_write"
MEMORY_RETRIEVAL_TOOL: Final = "tether.memory_retrieval"
MEMORY_KINDS: Final = (MemoryWriteKind, MemoryRetrievalKind)


def _text(source: Any, data: Mapping[str, Any], node: Node, what: str) -> str:
    value = bind_input(source, data)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"node {node.id!r}: {what} must give a non-empty string, got {value!r}")
    return value


def memory_write_args(node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
    kind = node.kind
    assert isinstance(kind, MemoryWriteKind)
    content = bind_input(kind.content, data)
    args: dict[str, Any] = {
        "user": _text(kind.user, data, node, "user"),
        "subject": _text(kind.subject, data, node, "subject"),
        "content": content if isinstance(content, str) else _json_text(content),
    }
    if kind.supersedes is not None:
        args["supersedes"] = _text(kind.supersedes, data, node, "supersedes")
    return args


def memory_retrieval_args(node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
    kind = node.kind
    assert isinstance(kind, MemoryRetrievalKind)
    topic = bind_input(kind.topic, data)
    return {
        "user": _text(kind.user, data, node, "user"),
        "topic": topic if isinstance(topic, str) else _json_text(topic),
        "budget_tokens": kind.budget_tokens,
    }


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def check_memory(wf: Workflow, tools: ToolRegistry) -> list[ValidationIssue]:
    """A memory node needs the runtime's memory tools (``tether.Runtime`` has them)."""
    issues = []
    for node in wf.nodes.values():
        if isinstance(node.kind, MEMORY_KINDS):
            writes = isinstance(node.kind, MemoryWriteKind)
            name = MEMORY_WRITE_TOOL if writes else MEMORY_RETRIEVAL_TOOL
            if name not in tools.names():
                issues.append(ValidationIssue(
                    f"nodes.{node.id}.kind",
                    f"node {node.id!r}: a memory node needs durable memory, which "
                    f"tether.Runtime provides (this runtime has no tool {name!r})",
                ))  # fmt: skip
    return issues


class MemoryTools:
    """The memory nodes' built-in tools over ``memory`` (called when a tool runs, so the
    runtime's store is open by then)."""

    def __init__(self, memory: Callable[[], Memory]) -> None:
        self._memory = memory

    def tools(self) -> tuple[Tool, Tool]:
        return (
            Tool(
                name=MEMORY_WRITE_TOOL, fn=self.write, params=(), required=frozenset(),
                is_async=True, qualname="tether.agents.memory.nodes.MemoryTools.write",
                accepts_kwargs=True, description="Remember a fact in durable memory",
                inline=False,
            ),
            Tool(
                name=MEMORY_RETRIEVAL_TOOL, fn=self.retrieve, params=(), required=frozenset(),
                is_async=True, qualname="tether.agents.memory.nodes.MemoryTools.retrieve",
                accepts_kwargs=True, description="Recall relevant facts from durable memory",
                inline=False,
            ),
        )  # fmt: skip

    async def write(
        self, user: str, subject: str, content: str, supersedes: str | None = None
    ) -> dict[str, Any]:
        item = current_work_item()
        if item is None:
            raise NonRetryableError(
                f"{MEMORY_WRITE_TOOL} runs on the engine's in-process pool only (where the "
                "journal's database is), not on a fleet worker"
            )
        visit = item.dispatch - item.attempt + 1  # the same for every retry of this visit
        try:
            fact, written = await self._memory().write(
                user=user, subject=subject, content=content, supersedes=supersedes,
                source_run=item.execution_id,
                fact_id=f"{item.execution_id}/{item.node_id}/{visit}",
            )  # fmt: skip
        except ValueError as exc:  # a fact the table refuses (too long ...): no retry helps
            raise NonRetryableError(f"{MEMORY_WRITE_TOOL}: {exc}") from None
        output = {
            "fact_id": fact.fact_id, "subject": fact.subject, "content": fact.content,
            "at_ms": fact.at_ms, "supersedes": fact.supersedes,
        }  # fmt: skip
        return {
            "output": output,
            "facts": {"memory_fact_id": fact.fact_id, "memory_written": written},
        }

    async def retrieve(self, user: str, topic: str, budget_tokens: int) -> dict[str, Any]:
        ctx = await self._memory().context_for(user=user, topic=topic, budget_tokens=budget_tokens)
        facts = [
            {"fact_id": f.fact_id, "subject": f.subject, "content": f.content,
             "source_run": f.source_run, "at_ms": f.at_ms}
            for f in ctx.facts
        ]  # fmt: skip
        return {
            "output": {"text": ctx.text, "tokens": ctx.tokens, "facts": facts},
            "facts": {"memory_facts": len(facts), "memory_tokens": ctx.tokens},
        }
