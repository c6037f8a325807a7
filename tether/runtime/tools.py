"""Python tools: the ``@tool`` decorator, the registry the runtime resolves nodes against, and
binding a tool's parameters from workflow state.

Example::

    @tool
    async def add_one(n: int) -> int:
        return n + 1

    registry = ToolRegistry([add_one])
    registry.resolve("add_one").name        # "add_one"
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, overload

from tether.ir.conditions import lookup  # the same path rules as conditions
from tether.ir.types import Node, PythonFnKind, ToolKind
from tether.runtime.secrets import REF_PREFIX, has_reference, secret_name

ToolFn = Callable[..., Any]


@dataclass(frozen=True)
class Tool:
    """A registered function. ``name`` is how workflows refer to it (``tool: name``)."""

    name: str
    fn: ToolFn
    params: tuple[str, ...]
    required: frozenset[str]
    is_async: bool
    qualname: str
    accepts_kwargs: bool = False
    description: str = ""
    #: An async tool may run in its execution's own turn, skipping the pool's task hop; its
    #: execution's other messages (events, approvals, other branches' outcomes) wait until
    #: it returns, a cancel interrupts it. False keeps it on the pool's worker tasks.
    inline: bool = True
    #: An agent's call of it waits for a person's approval first (the run pauses; the
    #: decision is journaled; a rejection is told to the model and the tool never runs).
    requires_approval: bool = False

    async def call(self, kwargs: Mapping[str, Any], run_sync: Callable[..., Awaitable[Any]]) -> Any:
        """Call the function; synchronous ones go through ``run_sync`` (a worker thread)."""
        if self.is_async:
            return await self.fn(**kwargs)
        return await run_sync(lambda: self.fn(**kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A decorated function stays callable directly, as users expect of a decorator.
        return self.fn(*args, **kwargs)


@overload
def tool(fn: ToolFn, /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, inline: bool = True, requires_approval: bool = False
) -> Callable[[ToolFn], Tool]: ...


def tool(
    fn: ToolFn | None = None,
    /,
    *,
    name: str | None = None,
    inline: bool = True,
    requires_approval: bool = False,
) -> Tool | Callable[[ToolFn], Tool]:
    """Make a function usable as a workflow tool node (``type: tool, tool: <name>``).

    An async tool runs in its execution's own turn on the embedded runtime (no hop through
    the pool's worker tasks: the common step's path); ``inline=False`` keeps one that waits a
    long time on the pool, so that its execution's events and approvals are not held behind
    it. Synchronous tools always run in a worker thread. ``requires_approval=True``: an
    agent's call of it pauses the run until a person approves it (``Runtime.approve``).

    Example::

        @tool
        async def fetch(url: str) -> dict: ...

        @tool(name="search.web")
        def search(query: str) -> list[str]: ...   # sync tools run in a worker thread

        @tool(inline=False)
        async def wait_for_report(job: str) -> dict: ...   # minutes: on the pool

        @tool(requires_approval=True)
        async def refund(order: str, amount: float) -> str: ...   # a person says yes first
    """

    def wrap(f: ToolFn) -> Tool:
        sig = inspect.signature(f)
        params = tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        required = frozenset(
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
        )
        return Tool(
            name=name or f.__name__,
            fn=f,
            params=params,
            required=required,
            is_async=inspect.iscoroutinefunction(f),
            qualname=f"{f.__module__}.{f.__qualname__}",
            accepts_kwargs=any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()),
            description=inspect.getdoc(f) or "",
            inline=inline,
            requires_approval=requires_approval,
        )

    return wrap(fn) if fn is not None else wrap


class Parameters(Protocol):
    """What binding needs of a tool: a :class:`Tool`, or the parameters a worker announced
    for a tool the engine does not have (``tether.runtime.announced_tools``)."""

    @property
    def name(self) -> str: ...
    @property
    def params(self) -> tuple[str, ...]: ...
    @property
    def required(self) -> frozenset[str]: ...
    @property
    def accepts_kwargs(self) -> bool: ...


class UnknownTool(LookupError):
    """A node names a tool that is not registered with this runtime."""


class BindError(ValueError):
    """A tool parameter could not be bound from state or the node's input mapping."""


class ToolRegistry:
    """Tools by name (and by ``module.qualname`` for the jamjet SDK's ``python_fn`` nodes)."""

    def __init__(self, tools: Iterable[Tool | ToolFn] = ()) -> None:
        self._by_name: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool | ToolFn) -> Tool:
        registered = t if isinstance(t, Tool) else tool(t)
        existing = self._by_name.get(registered.name)
        if existing is not None and existing.fn is not registered.fn:
            raise ValueError(f"two different tools are named {registered.name!r}")
        self._by_name[registered.name] = registered
        self._by_name.setdefault(registered.qualname, registered)
        return registered

    def names(self) -> list[str]:
        return sorted({t.name for t in self._by_name.values()})

    def resolve(self, ref: str) -> Tool:
        found = self._by_name.get(ref)
        if found is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownTool(f"tool {ref!r} is not registered (registered tools: {known})")
        return found

    def for_node(self, node: Node) -> Tool:
        kind = node.kind
        if isinstance(kind, ToolKind):
            return self.resolve(kind.tool_ref)
        if isinstance(kind, PythonFnKind):
            # By module and qualified name only: a bare-name match could be another module's
            # function of the same name (a step left for remote workers would run it instead).
            qualified = f"{kind.module}.{kind.function}"
            found = self._by_name.get(qualified)
            if found is None:
                raise UnknownTool(f"function {qualified!r} is not registered as a tool here")
            return found
        raise UnknownTool(f"node {node.id!r} is not a tool node")


def input_mapping(node: Node) -> Mapping[str, Any]:
    if node.input:
        return node.input
    kind = node.kind
    return kind.input_mapping if isinstance(kind, ToolKind) else {}


def _path_parts(path: str) -> tuple[str, ...]:
    path = path.removeprefix("$").removeprefix(".")
    if path.startswith("state."):
        path = path[len("state.") :]
    return tuple(path.split("."))


class ArgumentBinder:
    """Binds one tool's arguments at one node; the mapping is parsed once, not per step.

    Mapped values first (``$path`` from state, anything else literal; ``${secret:NAME}`` is
    a literal reference, resolved only where the tool runs), then state keys named like a
    parameter. Raises BindError when a required parameter has no value, or when a value taken
    from state is a secret reference: only the workflow's author may reference a secret,
    never whoever supplies the run's input or a tool's output.
    """

    def __init__(self, t: Parameters, node: Node) -> None:
        self._node_id = node.id
        self._tool = t
        self._mapped: list[tuple[str, tuple[str, ...] | None, Any]] = []
        self._secret_params: set[str] = set()
        for param, source in input_mapping(node).items():
            if param not in t.params and not t.accepts_kwargs:
                raise BindError(
                    f"node {node.id!r}: input {param!r} is not a parameter of "
                    f"tool {t.name!r} (parameters: {', '.join(t.params) or 'none'})"
                )
            if isinstance(source, str) and source.startswith(REF_PREFIX):
                self._mapped.append((param, None, source))  # checked by the IR's validation
                self._secret_params.add(param)
            elif isinstance(source, str) and source.startswith("$"):
                self._mapped.append((param, _path_parts(source), None))
            else:
                self._mapped.append((param, None, source))
        mapped = {m[0] for m in self._mapped}
        self._by_name = tuple(p for p in t.params if p not in mapped)
        self._required_by_name = t.required - mapped

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for param, parts, literal in self._mapped:  # a loop: no comprehension frame per step
            kwargs[param] = lookup(data, parts) if parts is not None else literal
        for param in self._by_name:
            if param in data:
                kwargs[param] = data[param]
        if self._required_by_name and not self._required_by_name <= kwargs.keys():
            missing = sorted(self._required_by_name - kwargs.keys())
            raise BindError(
                f"node {self._node_id!r}: tool {self._tool.name!r} needs {', '.join(missing)}: "
                "not in state and not in the node's input mapping"
            )
        if has_reference(kwargs):
            smuggled = sorted(
                p for p, v in kwargs.items()
                if p not in self._secret_params and secret_name(v) is not None
            )  # fmt: skip
            if smuggled:
                raise BindError(
                    f"node {self._node_id!r}: input {', '.join(smuggled)} of tool "
                    f"{self._tool.name!r} comes from state and looks like a secret reference: "
                    "only the workflow may reference secrets"
                )
        return kwargs
