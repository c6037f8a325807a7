"""Durable memory's core, as properties over any facts hypothesis draws: a replaced fact
never reaches a context (supersedes always wins), a context never exceeds its token budget,
and one user's facts never reach another's context."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.agents.memory import Fact, approx_tokens, context_for, current_facts

USERS = ("alice", "bob", "carol")
SUBJECTS = ("location", "employer", "diet", "pet", "travel plans")
WORDS = ("amsterdam", "pune", "vegan", "cat", "acme", "paris", "march", "dog")


@st.composite
def fact_sets(draw: st.DrawFn) -> list[Fact]:
    count = draw(st.integers(0, 25))
    facts: list[Fact] = []
    for i in range(count):
        earlier = [f.fact_id for f in facts]
        supersedes = draw(st.none() | st.sampled_from(earlier)) if earlier else None
        facts.append(
            Fact(
                fact_id=f"f{i:03d}",
                scope=draw(st.sampled_from(USERS)),
                subject=draw(st.sampled_from(SUBJECTS)),
                content=" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))),
                source_run=f"run-{i}",
                at_ms=draw(st.integers(0, 50)),
                supersedes=supersedes,
            )
        )
    return facts


def _replaced(facts: list[Fact]) -> set[str]:
    """Ids no context may show: named by a later fact of the scope, or older than another
    fact about the same subject."""
    out = {f.supersedes for f in facts if f.supersedes is not None and any(
        g.fact_id == f.supersedes and g.scope == f.scope for g in facts)}  # fmt: skip
    for f in facts:
        for g in facts:
            same = (g.scope, g.subject) == (f.scope, f.subject)
            if same and (g.at_ms, g.fact_id) > (f.at_ms, f.fact_id):
                out.add(f.fact_id)
    return {x for x in out if x is not None}


@settings(max_examples=300, deadline=None)
@given(fact_sets(), st.sampled_from(USERS), st.sampled_from(WORDS), st.integers(0, 400))
def test_supersedes_always_wins(facts: list[Fact], user: str, topic: str, budget: int) -> None:
    shown = context_for(facts, user=user, topic=topic, budget_tokens=budget).facts
    assert not {f.fact_id for f in shown} & _replaced(facts)
    assert not {f.fact_id for f in current_facts(facts)} & _replaced(facts)


@settings(max_examples=300, deadline=None)
@given(fact_sets(), st.sampled_from(USERS), st.text(max_size=30), st.integers(0, 60))
def test_retrieval_never_exceeds_the_budget(
    facts: list[Fact], user: str, topic: str, budget: int
) -> None:
    ctx = context_for(facts, user=user, topic=topic, budget_tokens=budget)
    assert ctx.tokens == (approx_tokens(ctx.text) if ctx.text else 0) <= budget


@settings(max_examples=300, deadline=None)
@given(fact_sets(), st.sampled_from(USERS), st.sampled_from(WORDS))
def test_one_users_facts_never_reach_anothers_context(
    facts: list[Fact], user: str, topic: str
) -> None:
    ctx = context_for(facts, user=user, topic=topic, budget_tokens=10_000)
    assert all(f.scope == user for f in ctx.facts)
    others = {f.content for f in facts if f.scope != user} - {f.content for f in facts
                                                               if f.scope == user}  # fmt: skip
    assert not any(line.split(": ", 1)[1] in others for line in ctx.text.splitlines())


def test_the_newer_location_replaces_the_older_and_relevance_orders_the_rest() -> None:
    facts = [
        Fact("f1", "u1", "location", "Pune", "r1", at_ms=1),
        Fact("f2", "u1", "location", "Amsterdam", "r2", at_ms=2),
        Fact("f3", "u1", "diet", "vegan", "r2", at_ms=3),
        Fact("f4", "u2", "location", "Paris", "r9", at_ms=4),
    ]
    ctx = context_for(facts, user="u1", topic="what is her location", budget_tokens=400)
    assert ctx.text == "location: Amsterdam\ndiet: vegan"
    tight = context_for(facts, user="u1", topic="diet", budget_tokens=3)
    assert tight.text == "diet: vegan" and tight.tokens == 3
