"""Hypothesis strategies for what a model answers: the inputs of an agent.

Each answer is one the fake model server plays (:class:`FakeReply` or :class:`FakeFailure`):
a text answer, tool calls (of the named tools, with arguments that fit the tool's parameters
or that do not), a refusal, malformed JSON, a 429 with a Retry-After, a 500, or an answer
held past the client's deadline (a timeout). Hypothesis shrinks a failing script towards
fewer and plainer answers: text first, then valid tool calls.

Example::

    from tether.testing import strategies as tst

    answers = tst.model_answers(tools=[search, "delete_db"], malformed=0.05, rate_limited=0.1)
    # a list such as [FakeReply(tool_calls=(FakeToolCall("delete_db", {}),)),
    #                 FakeFailure(429, retry_after="30"), FakeReply("Done.")]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tether.agents.kinds.tool_schema import tool_spec
from tether.runtime.tools import Tool
from tether.testing.fake_models import FakeFailure, FakeReply, FakeToolCall
from tether.testing.fake_models.server import Scripted

#: How long a "timeout" answer is held: well past the harness's client deadline (0.25 s).
HOLD_SECS = 2.0

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=24),
    "integer": st.integers(-1000, 1000),
    "number": st.floats(-1e6, 1e6, allow_nan=False),
    "boolean": st.booleans(),
    "array": st.lists(_JSON, max_size=3),
    "object": st.dictionaries(st.text(max_size=6), _JSON, max_size=3),
}


def tool_arguments(tool: Tool | str, *, valid: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for a call of ``tool``: fitting its parameters (``valid``), or not (a
    required one missing, a wrong type, an unknown key). A tool known only by name gets any
    JSON object."""
    if isinstance(tool, str):
        return st.dictionaries(st.text(min_size=1, max_size=6), _JSON, max_size=3)
    schema = tool_spec(tool).parameters
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    fitting = {k: _BY_TYPE.get(props[k].get("type", ""), _JSON) for k in props}
    good = st.fixed_dictionaries(
        {k: v for k, v in fitting.items() if k in required},
        optional={k: v for k, v in fitting.items() if k not in required},
    )
    if valid:
        return good
    return good.flatmap(lambda args: _spoiled(args, props, required))


def _spoiled(
    args: dict[str, Any], props: dict[str, Any], required: set[str]
) -> st.SearchStrategy[dict[str, Any]]:
    ways = [st.just({**args, "unexpected_argument": 1})]
    for name in required:
        ways.append(st.just({k: v for k, v in args.items() if k != name}))
    typed = [k for k in props if props[k].get("type") in ("integer", "number", "boolean")]
    for name in typed:  # a string where a number or a flag belongs
        ways.append(st.just({**args, name: "not a " + str(props[name]["type"])}))
    return st.one_of(ways)


def tool_calls(tools: Sequence[Tool | str]) -> st.SearchStrategy[FakeReply]:
    """An answer that calls one to three of ``tools``, arguments valid or not."""
    names = [t if isinstance(t, str) else t.name for t in tools]
    one = st.sampled_from(range(len(tools))).flatmap(
        lambda i: st.builds(
            FakeToolCall,
            st.just(names[i]),
            st.booleans().flatmap(lambda ok: tool_arguments(tools[i], valid=not ok)),
        )
    )
    return st.builds(
        lambda calls, text: FakeReply(text=text, tool_calls=tuple(calls)),
        st.lists(one, min_size=1, max_size=3),
        st.sampled_from(["", "Let me check."]),
    )


def text_answers() -> st.SearchStrategy[FakeReply]:
    """A final answer in words (and refusals: the model declining, finish ``content_filter``
    or a plain 'I can't')."""
    plain = st.builds(FakeReply, st.text(min_size=1, max_size=60))
    refusal = st.sampled_from([
        FakeReply("I'm sorry, but I can't help with that."),
        FakeReply("", finish="content_filter"),
    ])  # fmt: skip
    return st.one_of(plain, refusal)


def failures(
    *, malformed: bool = True, rate_limited: bool = True, errors: bool = True, timeouts: bool = True
) -> st.SearchStrategy[Scripted]:
    """The ways a call fails: malformed JSON (a 200 whose body is not JSON), a 429 with a
    Retry-After in seconds (or none), a 500, an answer held until the client gives up."""
    kinds: list[st.SearchStrategy[Scripted]] = []
    if malformed:
        kinds.append(
            st.sampled_from([FakeFailure.malformed(), FakeFailure.malformed('{"choices": [{')])
        )
    if rate_limited:
        after = st.none() | st.sampled_from([0, 1, 30, 120])
        kinds.append(after.map(FakeFailure.rate_limited))
    if errors:
        kinds.append(st.just(FakeFailure.server_error()))
    if timeouts:
        kinds.append(st.just(FakeReply("too late", delay_secs=HOLD_SECS)))
    return st.one_of(kinds)


def model_answers(
    tools: Sequence[Tool | str] = (),
    *,
    malformed: float = 0.05,
    rate_limited: float = 0.1,
    server_errors: float = 0.05,
    timeouts: float = 0.02,
    max_answers: int = 8,
) -> st.SearchStrategy[list[Scripted]]:
    """Scripts of up to ``max_answers`` answers: tool calls of ``tools`` (``@tool`` objects
    for arguments that fit or not; names for tools the model may invent, such as one the
    agent is not allowed), text answers and refusals, and failures at about the given rates
    (each between 0 and 1). After the script the fake model gives a final answer
    (:data:`tether.testing.model_player.FINAL_ANSWER`)."""
    rates = {"malformed": malformed, "rate_limited": rate_limited,
             "errors": server_errors, "timeouts": timeouts}  # fmt: skip
    for name, rate in rates.items():
        if not 0 <= rate <= 1:
            raise ValueError(f"model_answers: {name} must be between 0 and 1, got {rate}")
    failing = sum(rates.values())
    good: list[st.SearchStrategy[Scripted]] = [text_answers()]
    if tools:
        good.insert(0, tool_calls(tools))  # tool calls first: an agent's usual answer
    answer: st.SearchStrategy[Scripted] = st.one_of(good)
    if failing > 0:
        bad = failures(**{k: v > 0 for k, v in rates.items()})
        # A failure at about the summed rate; the roll shrinks to 0, a good answer.
        cutoff = 100 - round(failing * 100)
        answer = st.integers(0, 99).flatmap(lambda roll: bad if roll >= cutoff else st.one_of(good))
    return st.lists(answer, max_size=max_answers)
