"""What a test's runtime is made of: its tools, its workflows, where its journal lives.

A test says it with the ``tether`` marker (on the test, its class or its module), or by
overriding the ``tether_runtime_options`` fixture (in a conftest, for many tests at once):

Example::

    @pytest.mark.tether(tools=[charge, refund], workflows=["flows/payment.yaml"])
    async def test_payment(tether_runtime):
        run = await tether_runtime.start("payment", {"amount": 50})

    # conftest.py
    @pytest.fixture
    def tether_runtime_options():
        return TetherOptions(tools=[charge, refund], workflows=[PAYMENT], storage="memory")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tether.ir import compile_yaml_file
from tether.ir.types import Workflow
from tether.runtime.code_first.decorators import CodeWorkflow
from tether.runtime.tools import Tool, ToolFn

Storage = Literal["sqlite", "memory"]

#: The ``tether`` marker's keyword arguments, which are TetherOptions' fields.
MARKER_KEYS = frozenset({"tools", "workflows", "storage", "durability", "call_timeout"})


@dataclass(frozen=True)
class TetherOptions:
    """How ``tether_runtime`` builds each runtime.

    ``workflows``: IR structs or YAML paths, registered in every life of the runtime (a test
    may also pass a workflow to ``start`` directly). ``storage``: a fresh SQLite file under
    the test's ``tmp_path`` (the default: what production runs on) or ``memory``.
    ``durability``: ``normal`` by default, which survives a process crash (the crash the
    harness simulates) without an fsync per commit. ``call_timeout``: seconds a model call may
    take before the provider client gives up (short, so a drawn timeout costs little).
    """

    tools: tuple[Tool | ToolFn, ...] = ()
    workflows: tuple[Workflow | Path | str | CodeWorkflow, ...] = ()
    storage: Storage = "sqlite"
    durability: Literal["full", "normal"] = "normal"
    call_timeout: float = 0.25
    #: Provider endpoints and keys for model and agent nodes (the fake model's, by default).
    model_env: Mapping[str, str] = field(default_factory=dict)

    def with_marker(self, kwargs: Mapping[str, Any]) -> TetherOptions:
        """These options with a ``tether`` marker's keyword arguments applied."""
        unknown = set(kwargs) - MARKER_KEYS
        if unknown:
            raise TypeError(
                f"@pytest.mark.tether: unknown option(s) {sorted(unknown)}; "
                f"it takes {sorted(MARKER_KEYS)}"
            )
        changes = dict(kwargs)
        for key in ("tools", "workflows"):
            if key in changes:
                changes[key] = tuple(_as_list(changes[key]))
        return replace(self, **changes)

    def compiled_workflows(self) -> list[Workflow]:
        """The graph workflows as IR (YAML files compiled; errors name the file and line)."""
        return [
            w if isinstance(w, Workflow) else compile_yaml_file(Path(w))
            for w in self.workflows
            if not isinstance(w, CodeWorkflow)
        ]

    def code_workflows(self) -> list[CodeWorkflow]:
        """The code-first workflows (given to each life's runtime when it is made: a
        recovering run needs its body before anything else happens)."""
        return [w for w in self.workflows if isinstance(w, CodeWorkflow)]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str | Path | Workflow | CodeWorkflow) or callable(value):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise TypeError(f"@pytest.mark.tether: expected a list, got {value!r}")
