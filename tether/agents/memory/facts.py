"""Durable memory's facts and which of them are current.

A fact is something a run learned about a subject, scoped to one user or tenant. A newer fact
about the same subject replaces an older one ("location: Amsterdam" supersedes "location:
Pune"), and a fact may name the one it replaces (``supersedes``) whatever its subject: a
replaced fact is never current again.

Example::

    old = Fact("f1", "u1", "location", "Pune", source_run="r1", at_ms=1)
    new = Fact("f2", "u1", "location", "Amsterdam", source_run="r2", at_ms=2, supersedes="f1")
    current_facts([old, new])          # [new]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fact:
    """One remembered fact: ``scope`` is the user or tenant it belongs to, ``source_run`` the
    execution that wrote it, ``at_ms`` when (the run's journaled time)."""

    fact_id: str
    scope: str
    subject: str
    content: str
    source_run: str = ""
    at_ms: int = 0
    supersedes: str | None = None
    #: The store's write order: of two facts about one subject in the same millisecond, the
    #: later write is current (0: not kept, as for facts from before it, or not stored yet).
    #: The store's bookkeeping, not part of what the fact says: left out of equality.
    written: int = field(default=0, compare=False)


def current_facts(facts: Iterable[Fact]) -> list[Fact]:
    """The facts nothing replaces, oldest first: per scope and subject the latest (by time,
    then write order, then id), less every fact another one names in ``supersedes``."""
    every = list(facts)
    replaced = {(f.scope, f.supersedes) for f in every if f.supersedes is not None}
    latest: dict[tuple[str, str], Fact] = {}
    for fact in every:
        key = (fact.scope, fact.subject)
        held = latest.get(key)
        if held is None or _order(fact) > _order(held):
            latest[key] = fact
    kept = [f for f in latest.values() if (f.scope, f.fact_id) not in replaced]
    return sorted(kept, key=_order)


def _order(fact: Fact) -> tuple[int, int, str]:
    return fact.at_ms, fact.written, fact.fact_id
