"""The policy an engine applies at its exits: its own (``TETHER_REDACT``) united with every
registered workflow's ``governance.redact``.

One policy for every exit, rather than one per run: a log line or a span is written where the
workflow is not at hand, and applying a workflow's detectors to another's views too is the
safe side of the choice. A workflow registered while the engine runs joins the policy at
once (``add``); versions in the registry join it when the engine starts (``load``).

Example::

    redaction = EngineRedaction(policy_from_env(os.environ), lambda: key)
    await redaction.load(store)
    r = redaction.current              # None: nothing to redact
    view = r.value(view) if r else view
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from tether.governance.redaction.redactor import Redactor, merge_policies
from tether.ir.governance import RedactPolicy
from tether.ir.types import Workflow, decode_workflow
from tether.persistence.contract import Store

if TYPE_CHECKING:  # OpenTelemetry is an optional extra
    from opentelemetry.sdk.trace import SpanProcessor

_log = logging.getLogger("tether.governance")


def workflow_policy(wf: Workflow) -> RedactPolicy | None:
    """The redaction policy a workflow carries, if any."""
    return wf.governance.redact if wf.governance is not None else None


class EngineRedaction:
    """The engine's current :class:`Redactor` (None while no policy applies)."""

    def __init__(self, configured: RedactPolicy | None, key: Callable[[], bytes]) -> None:
        self._key = key
        self._policies: list[RedactPolicy] = [] if configured is None else [configured]
        self.current: Redactor | None = None
        self._rebuild()

    def add(self, wf: Workflow) -> None:
        """Apply ``wf``'s policy too (nothing when it has none, or it is applied already)."""
        policy = workflow_policy(wf)
        if policy is not None and policy not in self._policies:
            self._policies.append(policy)
            self._rebuild()

    async def load(self, store: Store) -> None:
        """Apply the policies of every workflow version in ``store``'s registry."""
        for row in await store.list_workflows():
            try:
                wf = decode_workflow(row.ir)
            except Exception:  # a row this version cannot read carries no policy it knows
                _log.warning("redaction: cannot read %s@%s", row.workflow_id, row.version)
                continue
            self.add(wf)

    def span_processor(self, inner: SpanProcessor) -> SpanProcessor:
        """``inner`` behind this redaction (traces: :mod:`.trace_exit`)."""
        from tether.governance.redaction.trace_exit import RedactingSpanProcessor

        return RedactingSpanProcessor(inner, self)

    def _rebuild(self) -> None:
        merged = merge_policies(self._policies)
        if merged is None:
            self.current = None
            return
        key = self._key() if merged.mode == "hash" else None
        self.current = Redactor(merged, key)
