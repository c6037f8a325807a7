"""Durable memory's rows: the facts table beside the journal, and what a store offers for it.

A fact belongs to one scope (a user or tenant) and is written once: ``write_fact`` with a
``fact_id`` already in that scope changes nothing, so a write retried after a crash (the same
id, derived from the execution, node and visit that made it) is applied once. Reads are per
scope only: no call reads another scope's facts.

Example::

    row = FactRow("run-1/remember/1", "u1", "location", "Amsterdam", "run-1", 1_700_000_000_000)
    assert await store.write_fact(row)            # False the second time
    await store.read_facts("u1")                  # [row]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Longest scope, subject and id a fact may have (characters), and its longest content.
MAX_KEY_CHARS = 512
MAX_CONTENT_CHARS = 65_536


@dataclass(frozen=True, slots=True)
class FactRow:
    """One stored fact (``tether.agents.memory.Fact`` is what reasons over it)."""

    fact_id: str
    scope: str
    subject: str
    content: str
    source_run: str
    at_ms: int
    supersedes: str | None = None
    #: The store's write order (grows with each fact written; 0 before it is stored, and for
    #: facts stored before the order was kept): ties of ``at_ms`` go to the later write.
    written: int = 0


@runtime_checkable
class FactStore(Protocol):
    """A store that keeps facts (SQLite, Postgres and the memory store all do)."""

    async def write_fact(self, row: FactRow) -> bool:
        """Insert ``row`` unless its ``(scope, fact_id)`` is there; True when inserted."""
        ...

    async def read_facts(self, scope: str) -> list[FactRow]:
        """Every fact of ``scope`` (current or replaced), oldest first."""
        ...


def check_fact(row: FactRow) -> None:
    """Refuse a row the table would not keep as given (ValueError naming the field)."""
    for name in ("fact_id", "scope", "subject"):
        value = getattr(row, name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a fact's {name} must be a non-empty string, got {value!r}")
        if len(value) > MAX_KEY_CHARS:
            raise ValueError(f"a fact's {name} is {len(value)} characters; at most {MAX_KEY_CHARS}")
    if not isinstance(row.content, str) or len(row.content) > MAX_CONTENT_CHARS:
        raise ValueError(f"a fact's content must be a string of at most {MAX_CONTENT_CHARS} chars")
    if row.supersedes is not None and not isinstance(row.supersedes, str):
        raise ValueError(f"a fact's supersedes must be a fact id, got {row.supersedes!r}")
    if isinstance(row.at_ms, bool) or not isinstance(row.at_ms, int) or row.at_ms < 0:
        raise ValueError(f"a fact's at_ms must be a non-negative integer, got {row.at_ms!r}")
