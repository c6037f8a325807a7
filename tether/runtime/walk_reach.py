"""Where the finished nodes of one token walk lead, as seen from the nodes still on its path.

The parallel-block walk (:mod:`tether.runtime.parallel_blocks`) follows a token depth first
and never steps onto a node already on its current path: a loop back leaves through the
loop's exit. So what a node leads to depends on the path it is reached by. A node finished
while an enclosing loop node ``s`` was still on the path cannot lead through ``s``; reached
again after ``s`` has finished, it can. Walking a node again for every path that reaches it is
exponential in the number of branching nodes; this keeps, for every finished node, where it
leads *now*, in near-linear time overall:

- a finished node with no route back to a node still on the path leads to a fixed place;
- a finished node with a route back to a path node ``s`` (directly, or through other finished
  nodes) leads exactly where ``s`` leads once ``s`` finishes: ``s`` reaches it and it reaches
  ``s``, past nothing still on the path. So when ``s`` finishes it joins ``s``'s group in a
  union-find and shares its destination from then on.

Example::

    reach = WalkReach()
    reach.finish("check", "merge", returning=[])   # check leads to the join 'merge'
    reach.leads_to("check")                          # "merge"
"""

from __future__ import annotations

from collections.abc import Iterable


class WalkReach:
    """Finished nodes of one walk, grouped by where they lead (a union-find)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        #: Per group (keyed by its root): the one place its nodes lead, or None for nowhere.
        self._leads: dict[str, str | None] = {}
        #: Per group: nodes that route into it, which join whatever group it joins.
        self._behind: dict[str, list[str]] = {}

    def __contains__(self, node: str) -> bool:
        return node in self._parent

    def leads_to(self, node: str) -> str | None:
        """Where a finished node leads, given the nodes still on the path."""
        return self._leads[self._root(node)]

    def routes_into(self, node: str, finished: str) -> None:
        """``node`` (on the path) has a route to ``finished``: whenever ``finished``'s group
        joins a path node's group, so does ``node`` (it reaches that path node too)."""
        self._behind.setdefault(self._root(finished), []).append(node)

    def finish(self, node: str, leads: str | None, returning: Iterable[str]) -> None:
        """``node`` leaves the path leading to ``leads``; ``returning`` are the nodes whose
        route back to it was cut while it was on the path. They, and every node behind them,
        now lead where it leads."""
        self._parent[node] = node
        self._leads[node] = leads
        pending = list(returning)
        while pending:
            root = self._root(pending.pop())
            if root == node:
                continue
            self._parent[root] = node
            del self._leads[root]
            pending.extend(self._behind.pop(root, ()))

    def _root(self, node: str) -> str:
        root = node
        while self._parent[root] != root:
            root = self._parent[root]
        while node != root:  # path compression keeps later look-ups short
            up = self._parent[node]
            self._parent[node] = root
            node = up
        return root
