"""``@step`` and ``@workflow``: plain async functions as a durable workflow and its steps.

A ``@step`` is a tool (it runs on the in-process pool or a ``tether worker``, with its retry
policy and timeout); called inside a ``@workflow`` it becomes a durable call: journaled before
it runs, its outcome journaled before the workflow goes on, and on replay its recorded result
returned without running it again. Called anywhere else it is the plain function.

Example::

    @step(retry={"max_attempts": 3}, timeout="30s")
    async def analyze(data: dict) -> dict: ...

    @workflow(id="pipeline", version="1")
    async def pipeline(ctx, data: dict) -> dict:
        raw = await fetch_data(data["url"])
        return await analyze(raw)

    async with Runtime("sqlite:///.tether/runtime.db", workflows=[pipeline]) as rt:
        print(await rt.run(pipeline, {"url": "https://example.com"}))
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, overload

from tether.errors import UnsupportedNode
from tether.ir.types import EndKind, Node, RetryPolicy, ToolKind, Workflow
from tether.ir.yaml_values import ValueProblem, parse_duration, parse_retry
from tether.runtime.code_first.calls import current_driver
from tether.runtime.tools import Tool, ToolFn, ToolRegistry, tool

#: The one node of a code-first workflow's IR: its body is code, not a graph.
BODY_NODE = "body"
#: Characters a step name may not hold: they separate the parts of a call's node id.
_RESERVED = ("#", "@")


@dataclass(frozen=True)
class Step(Tool):
    """A tool that a code-first workflow calls durably (see :func:`step`)."""

    retry: RetryPolicy | None = None
    timeout_secs: float | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        driver = current_driver()
        if driver is None:
            return self.fn(*args, **kwargs)  # outside a workflow: the plain function
        return driver.call_step(self, self.arguments(args, kwargs))

    @functools.cached_property
    def signature(self) -> inspect.Signature:
        # Once per step: inspect.signature costs more than the rest of a replayed call.
        return inspect.signature(self.fn)

    @functools.cached_property
    def _named(self) -> frozenset[str]:
        return frozenset(self.params)

    @functools.cached_property
    def _positional(self) -> tuple[str, ...]:
        """The leading parameters a call may pass by position (none if it takes *args)."""
        out = []
        for p in self.signature.parameters.values():
            if p.kind is p.VAR_POSITIONAL:
                return ()
            if p.kind is not p.POSITIONAL_OR_KEYWORD:
                break
            out.append(p.name)
        return tuple(out)

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, as the journal and the tool get them."""
        named = self._positional
        if len(args) <= len(named):
            # The common call, without inspect's bind (the cost of a replayed call).
            fast = dict(zip(named, args, strict=False))
            if not kwargs or (not (fast.keys() & kwargs.keys()) and kwargs.keys() <= self._named):
                fast.update(kwargs)
                if self.required <= fast.keys():
                    return fast
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"step {self.name!r}: {exc}") from None
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if isinstance(value, dict) and name not in self.params:
                out.update(value)  # **kwargs
            else:
                out[name] = value
        return out


@overload
def step(fn: ToolFn, /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: Mapping[str, Any] | RetryPolicy | None = None,
    timeout: float | str | None = None,
    inline: bool = True,
) -> Callable[[ToolFn], Step]: ...


def step(
    fn: ToolFn | None = None,
    /,
    *,
    name: str | None = None,
    retry: Mapping[str, Any] | RetryPolicy | None = None,
    timeout: float | str | None = None,
    inline: bool = True,
) -> Step | Callable[[ToolFn], Step]:
    """Make a function a durable step of code-first workflows (and a tool of graph ones).

    ``retry``: a retry policy (``{"max_attempts": 3, "backoff_initial_secs": 1}``; the
    workflow's default otherwise); ``timeout``: seconds or ``"30s"``/``"5m"`` per attempt.

    Example::

        @step(retry={"max_attempts": 5}, timeout="1m")
        async def charge(order: str, amount: float) -> dict: ...
    """
    policy = _retry_policy(retry)
    timeout_secs = _timeout(timeout)

    def wrap(f: ToolFn) -> Step:
        base = tool(name=name, inline=inline)(f)
        if not base.name or any(c in base.name for c in _RESERVED):
            raise ValueError(f"step name {base.name!r} may not contain '#' or '@'")
        if any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(f).parameters.values()):
            raise TypeError(f"@step {base.name}: a step's input is named: no *args parameter")
        fields = {k: getattr(base, k) for k in base.__dataclass_fields__}
        return Step(**fields, retry=policy, timeout_secs=timeout_secs)

    return wrap(fn) if fn is not None else wrap


def _retry_policy(raw: Mapping[str, Any] | RetryPolicy | None) -> RetryPolicy | None:
    if raw is None or isinstance(raw, RetryPolicy):
        return raw
    try:
        return parse_retry(raw)
    except ValueProblem as exc:
        raise ValueError(f"@step retry: {exc}") from None


def _timeout(raw: float | str | None) -> float | None:
    if raw is None:
        return None
    try:
        secs = parse_duration(raw)
    except ValueProblem as exc:
        raise ValueError(f"@step timeout: {exc}") from None
    if secs <= 0:
        raise ValueError(f"@step timeout must be positive, got {raw!r}")
    return secs


@dataclass(frozen=True)
class CodeWorkflow:
    """A code-first workflow: its id and version, and the function that is its body."""

    workflow_id: str
    version: str
    fn: Callable[..., Any]
    description: str = ""
    #: Steps registered with it besides those of its module (made at run time, say).
    steps: tuple[Step, ...] = ()

    @property
    def code_ref(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    @property
    def ref(self) -> str:
        return f"{self.workflow_id}@{self.version}"

    @functools.cached_property
    def takes_input(self) -> bool:
        """Does the body take the run's input after ``ctx`` (``fn(ctx, input)``)?"""
        return len(inspect.signature(self.fn).parameters) >= 2

    def ir(self) -> Workflow:
        """The IR the registry stores: the id, version and where the body's code lives
        (one object per workflow, so that a runtime knows it has registered it already)."""
        return self._ir

    @functools.cached_property
    def _ir(self) -> Workflow:
        body = Node(id=BODY_NODE, kind=EndKind(), description=f"code: {self.code_ref}")
        return Workflow(
            workflow_id=self.workflow_id,
            version=self.version,
            start_node=BODY_NODE,
            nodes={BODY_NODE: body},
            description=self.description or None,
            code=self.code_ref,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"workflow {self.ref} runs on a runtime: 'await rt.run({self.fn.__name__}, input)'"
        )


def workflow(
    *,
    id: str | None = None,
    version: str = "1",
    description: str = "",
    steps: Iterable[Step] = (),
) -> Callable[[Callable[..., Any]], CodeWorkflow]:
    """Make an async function ``fn(ctx)`` or ``fn(ctx, input)`` a durable workflow.

    Between durable calls (steps and ``ctx`` calls) the body must do the same thing each time
    it runs: it is replayed from the top after a restart, and a replay that calls something
    else than the journal recorded stops the run with a ``NondeterminismError``.

    Example::

        @workflow(id="pipeline", version="1")
        async def pipeline(ctx, data: dict) -> dict: ...
    """

    def wrap(fn: Callable[..., Any]) -> CodeWorkflow:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@workflow {fn.__qualname__}: the body must be an async function")
        if not 1 <= len(inspect.signature(fn).parameters) <= 2:
            raise TypeError(f"@workflow {fn.__qualname__}: the body takes (ctx) or (ctx, input)")
        return CodeWorkflow(
            workflow_id=id or fn.__name__,
            version=version,
            fn=fn,
            description=description or inspect.getdoc(fn) or "",
            steps=tuple(steps),
        )

    return wrap


def steps_beside(wf: CodeWorkflow) -> list[Step]:
    """The steps defined in the body's module and those given to ``@workflow(steps=...)``,
    registered with it so that a run recovered after a restart finds them before its body
    has called any."""
    found = [v for v in wf.fn.__globals__.values() if isinstance(v, Step)]
    return found + [s for s in wf.steps if all(s is not f for f in found)]


def step_node(node_id: str, name: str, s: Step | None) -> Node:
    """The node a step call's hand-outs are made from (tool, retry policy, timeout)."""
    return Node(
        id=node_id,
        kind=ToolKind(tool_ref=name),
        retry_policy=s.retry if s is not None else None,
        node_timeout_secs=s.timeout_secs if s is not None else None,
    )


def admit(wf: CodeWorkflow, tools: ToolRegistry, bodies: dict[str, CodeWorkflow]) -> Workflow:
    """Take a code-first workflow into a runtime: its body by where it lives, its steps as
    tools; returns its IR. Another body at the same place (a module reloaded) replaces it."""
    known = bodies.get(wf.code_ref)
    if known is not None and (known.workflow_id, known.version) != (wf.workflow_id, wf.version):
        raise ValueError(f"{wf.code_ref} is workflow {known.ref} here already, not {wf.ref}")
    for s in steps_beside(wf):
        tools.add(s)
    bodies[wf.code_ref] = wf
    for other in wf.fn.__globals__.values():  # its module's others: children it may start
        if isinstance(other, CodeWorkflow) and other.code_ref not in bodies:
            bodies[other.code_ref] = other
            for s in steps_beside(other):
                tools.add(s)
    return wf.ir()


def check_body_known(wf: Workflow, bodies: Mapping[str, CodeWorkflow]) -> None:
    """Refuse the IR of a code-first workflow whose body this runtime was not given: it
    could never run here (and an IR never names code for the engine to import: I14)."""
    if wf.code is None:
        return
    body = bodies.get(wf.code)
    if body is None:
        module = wf.code.partition(":")[0]
        raise UnsupportedNode(
            f"workflow {wf.ref} is code-first ({wf.code}) and this engine does not have its "
            f"body: start the engine with `tether dev --modules {module}` (embedded: "
            "Runtime(..., workflows=[...]))"
        )
    if (body.workflow_id, body.version) != (wf.workflow_id, wf.version):
        raise UnsupportedNode(
            f"workflow {wf.ref} names the body {wf.code}, which this engine serves as "
            f"workflow {body.ref}: deploy it under that id and version"
        )
