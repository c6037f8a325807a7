"""``tether.Runtime``: the runtime with every node kind plugged in (model, agent and http nodes
from :mod:`tether.agents`), for services that embed Tether. ``tether.runtime.Runtime`` is the
same runtime without them (no provider or network code below ``tether.agents``).

Example::

    from tether import Runtime, tool

    async with Runtime("sqlite:///.tether/runtime.db", tools=[search]) as rt:
        await rt.register("research.yaml")         # model and agent nodes run
        print(await rt.run_durable(order, {"order_id": "A-1"}))   # a @workflow too
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.agents.kinds import AgentKinds
from tether.agents.memory.api import Memory
from tether.agents.memory.nodes import MemoryTools
from tether.ir.types import Workflow
from tether.runtime import Runtime as CoreRuntime
from tether.runtime.code_first.decorators import CodeWorkflow
from tether.runtime.node_kinds import NodeKinds
from tether.runtime.secrets import secret_source


class Runtime(CoreRuntime):
    """:class:`tether.runtime.Runtime` with :class:`tether.agents.kinds.AgentKinds` as its
    ``node_kinds`` unless others are given (its http nodes read ``secrets`` first)."""

    def __init__(self, *args: Any, node_kinds: NodeKinds | None = None, **kwargs: Any) -> None:
        if node_kinds is None:
            node_kinds = AgentKinds(secrets=secret_source(kwargs.get("secrets")))
        super().__init__(*args, node_kinds=node_kinds, **kwargs)
        self._memory: Memory | None = None
        self._memory_store: object = None
        # Not among the plug-in's tools: a fleet worker announcing them would take memory
        # nodes' items without the journal's database; they run on this engine's pool.
        for builtin in MemoryTools(lambda: self.memory).tools():
            self.tools.add(builtin)

    @property
    def memory(self) -> Memory:
        """Durable memory in the journal's database, per user or tenant (inside ``async
        with``; raises RuntimeError outside it).

        Example::

            await rt.memory.write(user="u1", subject="location", content="Amsterdam")
            ctx = await rt.memory.context_for(user="u1", topic="travel", budget_tokens=400)
        """
        store = self.store
        if self._memory is None or self._memory_store is not store:
            self._memory, self._memory_store = Memory(store, self.clock), store
        return self._memory

    async def run_durable(
        self, workflow: Workflow | str | CodeWorkflow, input: Mapping[str, Any] | None = None
    ) -> Any:
        """Run ``workflow`` (a graph workflow, a registered ``id[@version]`` or a
        ``@workflow``) to its result, journaled as any run: the name the deployment docs use
        beside :func:`tether.deploy`, and the same call as ``rt.run``. Raises as
        ``Run.result`` does (``ExecutionFailedError``, ...).

        Example::

            result = await rt.run_durable(order, {"order_id": "A-1"})
        """
        return await self.run(workflow, input)
