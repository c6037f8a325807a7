"""Routes of durable memory (``rt.memory``): a user's facts with what supersedes what, a
write, and the context a run would get, under the same bearer token as every other route.

A user (or tenant) is the path's ``{user}``; facts of one user never answer for another. A
refusal names the field (422): an empty subject, content over the table's limit, a
``supersedes`` naming no fact of this user, a budget out of range. An engine whose store
keeps no facts answers 409.

Example::

    POST /memory/u1/facts {"subject": "location", "content": "Amsterdam"}
    -> 201 {"fact_id": "...", "subject": "location", "content": "Amsterdam", "written": true}
    GET /memory/u1/facts -> {"user": "u1", "facts": [{..., "current": false,
                                                      "superseded_by": "..."}, ...]}
    GET /memory/u1/context?topic=where%20to%20meet&budget_tokens=400
    -> {"user": "u1", "text": "location: Amsterdam", "tokens": 5, "facts": [...]}
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody

from tether.agents.memory import Fact, Memory, MemoryUnavailable, current_facts
from tether.errors import InvalidInput
from tether.persistence.facts import MAX_KEY_CHARS
from tether.runtime.runtime import Runtime
from tether.server.views import iso

#: The largest context budget a caller may ask for (a model's whole window, and then some).
MAX_BUDGET_TOKENS: Final = 1_000_000


class WriteFactBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subject: str
    content: str
    supersedes: str | None = None
    #: Makes the write idempotent: the same id again writes nothing (default: a fresh one).
    fact_id: str | None = None
    source_run: str = ""


def _memory(request: Request[Any, Any, Any]) -> Memory:
    rt: Runtime = request.app.state.runtime
    held = getattr(rt, "memory", None)  # tether.Runtime's, with its scorer
    if isinstance(held, Memory):
        return held
    try:
        return Memory(rt.store, rt.clock)
    except MemoryUnavailable as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


def _user(user: str) -> str:
    if not user.strip() or len(user) > MAX_KEY_CHARS:
        raise InvalidInput(f"user must be 1-{MAX_KEY_CHARS} characters, got {user[:64]!r}")
    return user


def fact_view(fact: Fact, superseded_by: str | None = None, current: bool = True) -> dict[str, Any]:
    """A fact as the API and ``tether memory`` show it."""
    return {
        "fact_id": fact.fact_id,
        "subject": fact.subject,
        "content": fact.content,
        "source_run": fact.source_run,
        "at": iso(fact.at_ms),
        "at_ms": fact.at_ms,
        "supersedes": fact.supersedes,
        "current": current,
        "superseded_by": superseded_by,
    }


def superseded_by(facts: list[Fact]) -> dict[str, str]:
    """Fact id -> the id of the fact that replaced it: one naming it in ``supersedes``, else
    the next newer fact about the same subject."""
    out: dict[str, str] = {}
    ordered = sorted(facts, key=lambda f: (f.at_ms, f.fact_id))
    for i, fact in enumerate(ordered):
        if fact.supersedes is not None:
            out.setdefault(fact.supersedes, fact.fact_id)
        for later in ordered[i + 1 :]:
            if later.subject == fact.subject:
                out.setdefault(fact.fact_id, later.fact_id)
                break
    return out


@get("/memory/{user:str}/facts")
async def list_facts(
    request: Request[Any, Any, Any], user: FromPath[str], current: FromQuery[bool] = False
) -> dict[str, Any]:
    every = await _memory(request).facts(_user(user), current=False)
    now = {f.fact_id for f in current_facts(every)}
    replaced = superseded_by(every)
    shown = [f for f in every if f.fact_id in now] if current else every
    facts = [fact_view(f, replaced.get(f.fact_id), f.fact_id in now) for f in shown]
    return {"user": user, "facts": facts}


@post("/memory/{user:str}/facts", status_code=201)
async def write_fact(
    request: Request[Any, Any, Any], user: FromPath[str], data: JSONBody[WriteFactBody]
) -> dict[str, Any]:
    memory = _memory(request)
    if not data.subject.strip():
        raise InvalidInput("subject must be a non-empty string")
    if data.supersedes is not None:
        known = {f.fact_id for f in await memory.facts(_user(user), current=False)}
        if data.supersedes not in known:
            raise InvalidInput(f"supersedes {data.supersedes[:64]!r} names no fact of user "
                               f"{user[:64]!r}")  # fmt: skip
    try:
        fact, written = await memory.write(
            user=_user(user), subject=data.subject, content=data.content,
            supersedes=data.supersedes, source_run=data.source_run, fact_id=data.fact_id,
        )  # fmt: skip
    except ValueError as exc:  # the table's own limits (sizes, an empty id)
        raise InvalidInput(str(exc)) from None
    return {**fact_view(fact), "written": written}


@get("/memory/{user:str}/context")
async def context(
    request: Request[Any, Any, Any],
    user: FromPath[str],
    topic: FromQuery[str] = "",
    budget_tokens: FromQuery[int] = 400,
) -> dict[str, Any]:
    if not 1 <= budget_tokens <= MAX_BUDGET_TOKENS:
        raise InvalidInput(f"budget_tokens must be 1-{MAX_BUDGET_TOKENS}, got {budget_tokens}")
    ctx = await _memory(request).context_for(
        user=_user(user), topic=topic, budget_tokens=budget_tokens
    )
    return {
        "user": user, "topic": topic, "budget_tokens": budget_tokens, "tokens": ctx.tokens,
        "text": ctx.text, "facts": [fact_view(f) for f in ctx.facts],
    }  # fmt: skip


ROUTES = [list_facts, write_fact, context]
