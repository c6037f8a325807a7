"""The most relevant current facts for one user within a token budget.

Example::

    ctx = context_for(facts, user="u1", topic="travel plans", budget_tokens=400)
    ctx.text          # "location: Amsterdam\\n..."
    ctx.tokens <= 400
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tether.agents.memory.facts import Fact, current_facts
from tether.agents.memory.scoring import LexicalScorer, Scorer


def approx_tokens(text: str) -> int:
    """A token per four characters, rounded up (what the budget counts by default)."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class MemoryContext:
    """The chosen facts, most relevant first, their lines and what they cost in tokens."""

    facts: list[Fact] = field(default_factory=list)
    text: str = ""
    tokens: int = 0


def fact_line(fact: Fact) -> str:
    return f"{fact.subject}: {fact.content}"


def context_for(
    facts: Iterable[Fact],
    *,
    user: str,
    topic: str,
    budget_tokens: int,
    scorer: Scorer | None = None,
    count_tokens: Callable[[str], int] = approx_tokens,
) -> MemoryContext:
    """``user``'s current facts ranked by ``scorer`` (lexical by default; ties: the newer
    first), taken while their lines (one per fact, joined by newlines) fit ``budget_tokens``.
    A fact that does not fit is skipped, and a smaller one after it may still fit. Another
    user's facts are never read."""
    if budget_tokens < 0:
        raise ValueError(f"budget_tokens must not be negative, got {budget_tokens}")
    scorer = scorer or LexicalScorer()
    mine = current_facts(f for f in facts if f.scope == user)
    ranked = sorted(mine, key=lambda f: (-scorer.score(topic, f), -f.at_ms, f.fact_id))
    chosen: list[Fact] = []
    lines: list[str] = []
    for fact in ranked:
        candidate = "\n".join([*lines, fact_line(fact)])
        if count_tokens(candidate) <= budget_tokens:
            chosen.append(fact)
            lines.append(fact_line(fact))
    text = "\n".join(lines)
    return MemoryContext(chosen, text, count_tokens(text) if lines else 0)
