"""What the ``Runtime`` knows of workflows: registering them (IR, IR dicts, YAML files,
code-first bodies), writing them to the store's registry, looking them up, and preparing a
start (the registered copy, the input checked against it).

A mixin of :class:`~tether.runtime.runtime.Runtime`, kept apart so each module stays small;
a workflow is registered once and then looked up, so none of this is on a step's path.

Example::

    wf = rt.register_yaml("examples/counter.yaml")
    latest = await rt.workflow(wf.workflow_id)          # or "id@version"
    print([(v.version, v.digest) for v in await rt.list_workflows()])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tether import ir
from tether.clock import Clock, now_ms
from tether.errors import WorkflowNotFound
from tether.ir import check, workflow_from_ir
from tether.ir.types import Workflow
from tether.runtime.announced_tools import AnnouncedTools
from tether.runtime.code_first.decorators import CodeWorkflow, admit, check_body_known
from tether.runtime.node_kinds import NodeKinds
from tether.runtime.registry import WorkflowRegistry, WorkflowVersion
from tether.runtime.runnable import QueueUsers, check_runnable
from tether.runtime.services import Services
from tether.runtime.tools import ToolRegistry
from tether.runtime.typed_state import checked_input


class RuntimeWorkflows:
    """Workflows of a Runtime, which provides what is below."""

    tools: ToolRegistry
    node_kinds: NodeKinds | None
    clock: Clock
    _registry: WorkflowRegistry
    _queue_users: QueueUsers
    _bodies: dict[str, CodeWorkflow]
    _announced: AnnouncedTools | None

    @property
    def _svc(self) -> Services:
        raise NotImplementedError

    def register(self, workflow: Workflow | Mapping[str, Any] | CodeWorkflow) -> Workflow:
        """Validate and register a workflow (IR struct, or an IR dict such as the jamjet SDK's).

        A version is its content: registering the same content again is a no-op, different
        content under a known ``id@version`` raises WorkflowVersionConflict. It is written to
        the registry when first started, which checks the store's registry the same way.

        Example::

            wf = rt.register({"workflow_id": "w", "version": "1", ...})
        """
        if isinstance(workflow, CodeWorkflow):
            workflow = admit(workflow, self.tools, self._bodies)
        wf = workflow if isinstance(workflow, Workflow) else workflow_from_ir(workflow)
        check(wf)
        check_body_known(wf, self._bodies)
        announced = self._announced
        check_runnable(wf, self.tools, self._queue_users, self.node_kinds, announced)
        # Executions fold against the IR in the registry, never against this object: a
        # recovered run must not continue on an edited workflow under the same version.
        held = self._registry.add(wf)
        # Once accepted: a refusal claims no queue.
        self._queue_users.add(wf, self.tools, remote_tools=announced is not None)
        return held

    def register_yaml(self, path: Path | str) -> Workflow:
        """Compile, validate and register a YAML workflow; errors name file and line."""
        return self.register(ir.compile_yaml_file(Path(path)))  # loads the compiler now

    async def _persist(self, wf: Workflow) -> None:
        """Write ``wf`` to the store's registry, or check that it holds the same content."""
        if await self._registry.persist(self._svc.store, wf, now_ms(self.clock)):
            self._svc.add_workflow(wf)

    async def workflow(self, ref: str) -> Workflow:
        """A registered workflow by ``id`` (latest version) or ``id@version``."""
        workflow_id, _, version = ref.partition("@")
        wf = self._registry.get(workflow_id, version or None)
        if wf is not None:
            return wf
        row = await self._svc.store.get_workflow(workflow_id, version or None)
        if row is None:
            raise WorkflowNotFound(f"no workflow {ref!r} is registered")
        graph = await self._svc.graph(row.workflow_id, row.version)
        return graph.workflow

    async def list_workflows(self) -> list[WorkflowVersion]:
        """Every version in the registry with its content digest (``sha256:...``)."""
        return await self._registry.versions(self._svc.store)

    async def _prepare(
        self, workflow: Workflow | str | CodeWorkflow, input: Mapping[str, Any] | None
    ) -> tuple[Workflow, dict[str, Any]]:
        """The workflow registered and persisted, and the input checked against it."""
        if isinstance(workflow, CodeWorkflow):  # registered once per runtime, then looked up
            admitted = self._bodies.get(workflow.code_ref) is workflow
            held = self._registry.resolve(workflow.ir()) if admitted else None
            workflow = held or self.register(workflow)
        wf = workflow if isinstance(workflow, Workflow) else await self.workflow(workflow)
        # The registry's copy runs; any other object (an edited one too) is checked first.
        wf = self._registry.resolve(wf) or self.register(wf)
        given = checked_input(wf, input)
        await self._persist(wf)
        return wf, given
