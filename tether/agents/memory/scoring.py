"""How relevant a fact is to a topic: a pluggable :class:`Scorer`, and the lexical one built in.

Example::

    LexicalScorer().score("where does she live", Fact("f", "u", "location", "Amsterdam"))
"""

from __future__ import annotations

import re
from typing import Protocol

from tether.agents.memory.facts import Fact

_WORD = re.compile(r"[a-z0-9]+")


class Scorer(Protocol):
    """Relevance of ``fact`` to ``topic``: higher is more relevant, 0 is unrelated."""

    def score(self, topic: str, fact: Fact) -> float: ...


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class LexicalScorer:
    """The share of the topic's words found in the fact, its subject's words counting twice."""

    def score(self, topic: str, fact: Fact) -> float:
        wanted = words(topic)
        if not wanted:
            return 0.0
        subject, content = words(fact.subject), words(fact.content)
        hits = sum(2.0 if w in subject else 1.0 if w in content else 0.0 for w in wanted)
        return hits / (2.0 * len(wanted))
