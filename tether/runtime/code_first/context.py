"""``ctx``: what a code-first workflow body may do besides calling steps, durably.

Every call here is journaled at its position and answered from the journal on replay: a timer
(``sleep``), a person's decision (``approval``), an external event (``wait_event``), and values
that must not change when the body runs again (``now``, ``uuid``, ``random``). ``patched``
gates a deliberate change of a running workflow's code.

Example::

    @workflow(id="refund")
    async def refund(ctx, data: dict) -> dict:
        await ctx.sleep("1h")
        decision = await ctx.approval("refund", description="refund?", timeout="1d")
        event = await ctx.wait_event("payment-cleared", timeout="2d")
        return {"at": ctx.now().isoformat(), "id": ctx.uuid(), "ok": decision.approved}
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from tether.ir.types import Workflow
from tether.ir.yaml_values import ValueProblem, parse_duration
from tether.runtime.code_first.calls import ContinueAsNew
from tether.runtime.code_first.children import CHILD_KEY, ChildFailed, child_id
from tether.runtime.records import NodeWaiting

if TYPE_CHECKING:
    from tether.runtime.code_first.calls import CodeDriver
    from tether.runtime.code_first.decorators import CodeWorkflow


class Decision(msgspec.Struct, frozen=True):
    """A person's decision on an approval (``timed_out`` when none came in time)."""

    decision: str
    user_id: str = ""
    comment: str = ""

    @property
    def approved(self) -> bool:
        return self.decision == "approved"


class WorkflowContext:
    """The ``ctx`` a workflow body gets: durable timers, decisions, events and values."""

    def __init__(self, driver: CodeDriver, execution_id: str, input: dict[str, Any]) -> None:
        self._driver = driver
        self.execution_id = execution_id
        self.input = input

    def now(self) -> datetime:
        """The time (UTC) when the body first got here; the same on every replay."""
        ms = self._driver.value("now", lambda: self._driver.now_ms)
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    def uuid(self) -> str:
        """A random UUID made once and replayed (from the runtime's injected randomness)."""
        return str(self._driver.value("uuid", lambda: str(uuid.UUID(int=self._rand_bits()))))

    def random(self) -> float:
        """A number in [0, 1) drawn once and replayed."""
        return float(self._driver.value("random", lambda: self._driver.rng.random()))

    def patched(self, change_id: str) -> bool:
        """Is this run on the new code path of ``change_id``? True for runs that reach this
        point after the change, False for those that passed it before (so they replay).

        Example::

            if ctx.patched("v2-fraud-check"):
                await fraud_check(order)
        """
        return self._driver.patched(change_id)

    def continue_as_new(self, input: dict[str, Any] | None = None) -> NoReturn:
        """End this run's segment and start the body again with ``input`` (this run's if
        None) and an empty journal: how a body that loops for ever keeps its history short.
        The run keeps its id; the new segment is ``rt.current_segment(run_id)``.

        Example::

            if data["round"] < 1000:
                ctx.continue_as_new({"round": data["round"] + 1})
        """
        raise ContinueAsNew(dict(self.input if input is None else input))

    async def sleep(self, duration: float | str) -> None:
        """A durable timer: the run may stop and restart meanwhile; it fires once."""
        secs = _secs("sleep", duration)
        d = self._driver
        pos = d.next_position()
        node_id = f"@sleep#{pos}"
        fire_at = d.now_ms + int(secs * 1000)

        def waiting() -> NodeWaiting:
            return NodeWaiting(at_ms=d.now_ms, node_id=node_id, dispatch=1, fire_at_ms=fire_at)

        await d.durable(pos, node_id, waiting, _nothing)

    async def approval(
        self, name: str, *, description: str = "", timeout: float | str | None = None
    ) -> Decision:
        """Pause until a person decides (``rt.approve``, ``tether approve``, the API); with a
        ``timeout`` the decision is ``timed_out`` when none came in time."""
        fire_in = _secs("approval timeout", timeout) if timeout is not None else None
        d = self._driver
        pos = d.next_position()
        node_id = f"@approval:{name}#{pos}"

        def waiting() -> NodeWaiting:
            fire_at = d.now_ms + int(fire_in * 1000) if fire_in is not None else None
            return NodeWaiting(at_ms=d.now_ms, node_id=node_id, dispatch=1, fire_at_ms=fire_at,
                               approval=True, description=description)  # fmt: skip

        result: Decision = await d.durable(pos, node_id, waiting, _decision)
        return result

    async def wait_event(self, key: str, *, timeout: float | str | None = None) -> Any:
        """The payload of the next event sent with ``key`` (``rt.send_event``); TimeoutError
        when a ``timeout`` passes first."""
        fire_in = _secs("wait_event timeout", timeout) if timeout is not None else None
        d = self._driver
        pos = d.next_position()
        node_id = f"@event:{key}#{pos}"

        def waiting() -> NodeWaiting:
            fire_at = d.now_ms + int(fire_in * 1000) if fire_in is not None else None
            return NodeWaiting(at_ms=d.now_ms, node_id=node_id, dispatch=1, fire_at_ms=fire_at,
                               correlation_key=key)  # fmt: skip

        return await d.durable(pos, node_id, waiting, _event(key, timeout))

    async def child(
        self,
        workflow: CodeWorkflow | Workflow | str,
        input: dict[str, Any] | None = None,
        *,
        timeout: float | str | None = None,
    ) -> Any:
        """Run another registered workflow as a child of this run and return its result
        (ChildFailed if it ends without one; TimeoutError after ``timeout``, the child going
        on). The child is a run of its own (``<this run>~child<n>.<position>``), started once
        even if this run restarts.

        Example::

            receipt = await ctx.child(charge_card, {"order": order["id"]}, timeout="1h")
        """
        ref = workflow if isinstance(workflow, str) else workflow.ref
        d = self._driver
        cid = child_id(d.state, d.peek_position())  # the position the spec's value takes

        def spec() -> dict[str, Any]:
            return {"execution_id": cid, "workflow": ref, "input": dict(input or {})}

        made = d.value(f"child:{ref}", spec)
        got = await self.wait_event(f"{CHILD_KEY}{made['execution_id']}", timeout=timeout)
        if not isinstance(got, dict) or got.get("status") != "completed":
            ended = got if isinstance(got, dict) else {}
            raise ChildFailed(made["execution_id"], str(ended.get("status")), ended.get("error"))
        return got.get("result")

    def _rand_bits(self) -> int:
        bits = self._driver.rng.getrandbits(128)
        # Version 4, variant 1, as uuid.uuid4() sets them.
        bits &= ~(0xF000 << 64)
        bits |= 0x4000 << 64
        bits &= ~(0xC000 << 48)
        bits |= 0x8000 << 48
        return bits


def _secs(what: str, value: float | str) -> float:
    try:
        secs = parse_duration(value)
    except ValueProblem as exc:
        raise ValueError(f"ctx.{what}: {exc}") from None
    if secs < 0:
        raise ValueError(f"ctx.{what} must not be negative, got {value!r}")
    return secs


def _nothing(value: Any) -> None:
    return None


def _decision(value: Any) -> Decision:
    got = value if isinstance(value, dict) else {}
    return Decision(
        decision=str(got.get("decision", "")),
        user_id=str(got.get("user_id") or ""),
        comment=str(got.get("comment") or ""),
    )


def _event(key: str, timeout: float | str | None) -> Any:
    def resolve(value: Any) -> Any:
        got = value if isinstance(value, dict) else {}
        if got.get("by") == "timer":
            raise TimeoutError(f"no event {key!r} came within {timeout}")
        return got.get("payload")

    return resolve
