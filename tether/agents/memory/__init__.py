"""Durable memory's core: facts scoped per user or tenant, which are current (``supersedes``
always wins), and the most relevant of them within a token budget (a pluggable scorer, a
lexical one built in).

The facts live in the journal's database (``tether.persistence.facts``); ``rt.memory``
(:class:`Memory`) writes and reads them, and the ``memory_write`` and ``memory_retrieval``
nodes (``tether.agents.memory.nodes``) do so inside a run, a write applied once (I4).

Example::

    ctx = context_for(facts, user="u1", topic="where to meet", budget_tokens=400)
    ctx = await rt.memory.context_for(user="u1", topic="where to meet", budget_tokens=400)
"""

from tether.agents.memory.api import Memory, MemoryUnavailable
from tether.agents.memory.context import MemoryContext, approx_tokens, context_for, fact_line
from tether.agents.memory.facts import Fact, current_facts
from tether.agents.memory.scoring import LexicalScorer, Scorer

__all__ = [
    "Fact",
    "LexicalScorer",
    "Memory",
    "MemoryContext",
    "MemoryUnavailable",
    "Scorer",
    "approx_tokens",
    "context_for",
    "current_facts",
    "fact_line",
]
