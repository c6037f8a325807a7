"""The built-in tool that runs an eval node's work item: ``tether.eval``. It takes the input
bound at hand-out (the deterministic scores already computed, each judge's model call in
full), makes the judge calls through the model tool's clients, and returns the verdict with
the calls' facts (tokens, cost) and the scores for ``node_completed``.

The judge calls are one step: journaled together before they are made, their results together
after. A judge whose answer has no score on its scale fails the attempt (retried per the
node's retry policy: a model may do better), the answer kept, bounded; a 429 parks the step,
like any model call's.

Example::

    out = await EvalCaller(models).call(**args)
    out["output"]     # {"passed": False, "scores": [{"type": "llm_judge", "score": 2, ...}]}
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, Final

from tether.agents.kinds.model_tool import ModelCaller
from tether.agents.providers.types import bounded
from tether.errors import TetherError
from tether.runtime.eval_scores import entry, verdict, verdict_facts
from tether.runtime.tools import Tool

#: The name eval nodes' work items run under (a worker needs it to run them).
EVAL_TOOL: Final = "tether.eval"


class JudgeAnswerInvalid(TetherError):
    """A judge answered without a score on its scale; retried, the answer kept, bounded."""

    def __init__(self, model: str, problem: str, raw: str) -> None:
        super().__init__(f"llm_judge {model!r}: {problem}; the answer was: {bounded(raw, 2000)}")
        self.raw = raw


class EvalCaller:
    """Runs eval work items with ``models``' clients, caps and prices."""

    def __init__(self, models: ModelCaller) -> None:
        self._models = models

    def tool(self) -> Tool:
        return Tool(
            name=EVAL_TOOL, fn=self.call, params=(), required=frozenset(), is_async=True,
            qualname="tether.agents.kinds.eval_tool.EvalCaller.call", accepts_kwargs=True,
            description="Score an eval node (its judges' model calls)", inline=False,
        )  # fmt: skip

    async def call(self, **args: Any) -> dict[str, Any]:
        scores: list[Any] = list(args.get("scores") or [])
        facts: dict[str, Any] = {}
        for judge in args.get("judges") or []:
            out = await self._models.call(**judge["call"])
            lo, hi = judge["scale"]
            score, reason = parse_judge(str(out.get("output", "")), lo, hi, judge["model"])
            index = judge["index"]
            scores.extend([None] * (index + 1 - len(scores)))
            scores[index] = _judged(judge, score, reason)
            _add(facts, out.get("facts") or {})
        result = verdict([s for s in scores if isinstance(s, dict)])
        return {"output": result, "facts": {**facts, **verdict_facts(result)}}


def _judged(judge: Mapping[str, Any], score: float, reason: str) -> dict[str, Any]:
    lo, hi = judge["scale"]
    least = judge["min_score"]
    passed = score >= least
    word = "min" if passed else "below the min"
    message = f"score {score:g} ({word} {least:g}, scale {lo:g}-{hi:g})"
    message += f": {reason}" if reason else ""
    return entry(
        "llm_judge", judge.get("name", ""), passed, score, message, model=judge["model"],
        min_score=least, reason=reason,
    )  # fmt: skip


def parse_judge(text: str, lo: float, hi: float, model: str) -> tuple[float, str]:
    """The score and reason of a judge's answer: a JSON object, maybe fenced or with text
    around it. Raises JudgeAnswerInvalid."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except ValueError:
        start, end = body.find("{"), body.rfind("}")
        try:
            value = json.loads(body[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise JudgeAnswerInvalid(
            model, 'expected a JSON object {"score": ..., "reason": ...}', text
        )
    score = value.get("score")
    if isinstance(score, str):
        with contextlib.suppress(ValueError):
            score = float(score)
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise JudgeAnswerInvalid(model, "the answer has no numeric 'score'", text)
    if not lo <= score <= hi:
        raise JudgeAnswerInvalid(model, f"score {score:g} is outside the {lo:g}-{hi:g} scale", text)
    reason = value.get("reason")
    return float(score), bounded(str(reason), 1000) if reason is not None else ""


_SUMMED = ("input_tokens", "output_tokens", "model_duration_ms")


def _add(total: dict[str, Any], facts: Mapping[str, Any]) -> None:
    """Fold one judge call's facts into the eval's (tokens and cost summed)."""
    for key in _SUMMED:
        total[key] = total.get(key, 0) + int(facts.get(key) or 0)
    total["cost_usd"] = round(total.get("cost_usd", 0.0) + float(facts.get("cost_usd") or 0), 8)
    total["cost_known"] = total.get("cost_known", True) and bool(facts.get("cost_known", True))
    for key in ("gen_ai_system", "gen_ai_model", "finish_reason"):
        if key in facts:
            total[key] = facts[key]
