"""The state after each record of a journal, shown as JSON, and what changed at a record.

``replay`` (tether.runtime.state) folds a whole journal at once; here the fold is stopped at
every record so a person can see it move: the state *at record N* is the fold of records
1..N, exactly what a runtime that had committed up to N would hold (I2). A view leaves out
only what the fold keeps for its own speed (``running``, a count of ``nodes``) and shows a
code-first body's finished calls as one mapping by call (``calls``).

Example::

    before, after = state_view(steps[4].state), state_view(steps[5].state)
    state_diff(before, after)   # [{"op": "replace", "path": "/data/n", "old": 1, "value": 2}]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from tether.runtime.graph import Graph
from tether.runtime.records import JournalEntry
from tether.runtime.state import ExecutionState, apply

#: Fields of ExecutionState a view leaves out: derived counts the fold keeps for speed.
_INTERNAL = frozenset({"running", "calls"})


class ReplayStep(msgspec.Struct, frozen=True, gc=False):
    """One record of a journal and the state once it is folded."""

    seq: int
    entry: JournalEntry
    state: ExecutionState


def fold_steps(graph: Graph, entries: Iterable[JournalEntry]) -> Iterator[ReplayStep]:
    """The state after each record, in order (the fold of :func:`tether.runtime.state.apply`).

    Example::

        for step in fold_steps(graph, journal):
            print(step.seq, step.state.status)
    """
    state = ExecutionState()
    for entry in entries:
        state = apply(state, entry.record, graph)
        yield ReplayStep(entry.seq, entry, state)


def state_view(state: ExecutionState) -> dict[str, Any]:
    """The state as JSON-ready builtins: status as the index shows it, data, nodes, waits,
    the inbox, agents' loops, a code-first body's calls (``{call: {failed, value}}``).

    Example::

        state_view(await rt.state(run.id))["data"]     # {"n": 3}
    """
    fields = msgspec.to_builtins(state)
    view = {k: v for k, v in fields.items() if k not in _INTERNAL}
    view["status"] = state.display_status
    if state.calls:
        view["calls"] = {
            node_id: {"failed": result.failed, "value": msgspec.to_builtins(result.value)}
            for chunk in state.calls.values()
            for node_id, result in chunk.items()
        }
    return view


def state_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """What changed from ``before`` to ``after`` (views, or any JSON values): JSON Patch
    operations (RFC 6902 ``add``, ``remove``, ``replace`` with JSON Pointer paths), each
    ``replace`` and ``remove`` with the ``old`` value beside it for a person to read.

    Example::

        state_diff({"data": {"n": 1}}, {"data": {"n": 2, "m": 0}})
        # [{"op": "replace", "path": "/data/n", "old": 1, "value": 2},
        #  {"op": "add", "path": "/data/m", "value": 0}]
    """
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        for key, old in before.items():
            where = f"{path}/{_pointer(key)}"
            if key not in after:
                ops.append({"op": "remove", "path": where, "old": old})
            else:
                ops.extend(state_diff(old, after[key], where))
        for key, new in after.items():
            if key not in before:
                ops.append({"op": "add", "path": f"{path}/{_pointer(key)}", "value": new})
        return ops
    if before is after or _json(before) == _json(after):  # 1 and true differ in JSON
        return []
    return [{"op": "replace", "path": path, "old": before, "value": after}]


def _json(value: Any) -> bytes:
    try:
        return msgspec.json.encode(value, order="deterministic")
    except (TypeError, msgspec.EncodeError):
        return repr(value).encode()


def _pointer(key: Any) -> str:
    """A JSON Pointer reference token (RFC 6901): ``~`` and ``/`` escaped."""
    return str(key).replace("~", "~0").replace("/", "~1")
