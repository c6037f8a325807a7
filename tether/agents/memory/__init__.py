"""Durable memory's core: facts scoped per user or tenant, which are current (``supersedes``
always wins), and the most relevant of them within a token budget (a pluggable scorer, a
lexical one built in).

Not done yet (issue 21, part 3): the facts' table in the journal's database (SQLite and
Postgres), the ``memory_write`` and ``memory_retrieval`` nodes and ``rt.memory``; this core is
what they will call.

Example::

    ctx = context_for(facts, user="u1", topic="where to meet", budget_tokens=400)
"""

from tether.agents.memory.context import MemoryContext, approx_tokens, context_for, fact_line
from tether.agents.memory.facts import Fact, current_facts
from tether.agents.memory.scoring import LexicalScorer, Scorer

__all__ = [
    "Fact",
    "LexicalScorer",
    "MemoryContext",
    "Scorer",
    "approx_tokens",
    "context_for",
    "current_facts",
    "fact_line",
]
