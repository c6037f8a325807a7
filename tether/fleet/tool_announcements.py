"""What a worker announces of the tools it serves, and what the engine makes of it.

An engine binds a ``tool`` node's arguments at hand-out by the tool's parameters (and journals
them, I12). With announcements it need not import the tool's module: a worker's Hello lists
each tool's parameters, which are required, whether it takes ``**kwargs``, and a JSON schema;
the engine binds by them (:mod:`tether.runtime.announced_tools` says the rule).

Example::

    hello_tools = announcements(ToolRegistry([embed]))      # worker side, in its Hello
    signatures_of(hello_tools)                               # engine side: ToolSignature(...)
"""

from __future__ import annotations

from collections.abc import Iterable

from tether.fleet.protocol import MAX_NAMES, ToolAnnouncement
from tether.runtime.announced_tools import ToolSignature
from tether.runtime.tool_parameters import parameters_schema
from tether.runtime.tools import ToolRegistry

__all__ = ["announcements", "signatures_of"]

#: The engine's own built-in tools (model calls, HTTP, MCP ...): it never binds those by a
#: worker's word.
_BUILT_IN_PREFIX = "tether."


def announcements(registry: ToolRegistry) -> list[ToolAnnouncement]:
    """What a worker serving ``registry`` announces (its built-ins left out).

    Example::

        announcements(ToolRegistry([shout]))
        # [ToolAnnouncement(name='shout', params=['text'], required=['text'], ...)]
    """
    found = []
    for name in registry.names():
        if name.startswith(_BUILT_IN_PREFIX):
            continue
        t = registry.resolve(name)
        if t.name != name:
            continue  # a python_fn's qualified name for a tool announced under its own
        found.append(
            ToolAnnouncement(
                name=t.name,
                params=list(t.params),
                required=sorted(t.required),
                accepts_kwargs=t.accepts_kwargs,
                schema=parameters_schema(t),
            )
        )
    return found[:MAX_NAMES]


def signatures_of(announced: Iterable[ToolAnnouncement]) -> tuple[ToolSignature, ...]:
    """The engine's view of a Hello's announcements (built-in names ignored: a worker cannot
    rebind the engine's own tools)."""
    return tuple(
        ToolSignature(
            name=a.name,
            params=tuple(a.params),
            required=frozenset(a.required) & frozenset(a.params),
            accepts_kwargs=a.accepts_kwargs,
            schema=a.schema,
        )
        for a in announced
        if not a.name.startswith(_BUILT_IN_PREFIX)
    )
