"""Digests of workflows as versions before this code computed them (at commit dcf06c1): a
field added to the IR since must be left out of the canonical IR at its default, or every
stored version would be refused as changed on re-registration (I13). Update a pin only with a
migration for the versions already stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.ir import compile_yaml_file, compile_yaml_text
from tether.ir.identity import workflow_digest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

WAIT = (
    'workflow: {id: w, version: "1"}\n'
    "nodes:\n  hold: {type: wait, event: go, duration: 1h, next: end}\n"
)
AGENT = (
    'workflow: {id: a, version: "1"}\nmodels:\n  m: {provider: openai, model: gpt-4o-mini}\n'
    "nodes:\n  work: {type: agent, model: m, tools: [weather], budget: {max_iterations: 3}, "
    "output_key: answer, next: end}\n"
)
MODEL = (
    'workflow: {id: m, version: "1"}\nnodes:\n  think: {type: model, model: gpt-4o-mini, '
    'prompt: "hi {{ state.q }}", output_key: a, next: end}\n'
)

PINNED = {
    "agent.yaml": "sha256:68618444b3ae958ba76b12fe578fc90c73f7a8741822484641a8c4d18f6e5487",
    "counter.yaml": "sha256:2c53596965a35b5a6cf48f821baef2cc1d01d1dcca0944b3c93bb3089454cc75",
    "branching.yaml": "sha256:7f8cdba5e02dd37b448ad51abfaa6a8c59b00fa3cd2c27005a539b0b51dcf7e3",
    "slow_chain.yaml": "sha256:4fc77c90516aad8669965cd085124e49c40c220b91eebdec8f206d7363b08114",
    "wait": "sha256:acf9140b44ff380bd3ba4a31e265183912d20cad7e6832917f36fd4dc807c896",
    "agent": "sha256:8520500c9060a73e73aaa8db24408ac010c0701dcba39df211e2cb90e2df1fd2",
    "model": "sha256:abc547c7e9f22edbd7df9ce994747561b39ba3c7b25f7119cace29c3153ce1d8",
}
TEXTS = {"wait": WAIT, "agent": AGENT, "model": MODEL}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_stored_versions_digest_is_unchanged_I13(name: str) -> None:
    if name in TEXTS:
        wf = compile_yaml_text(TEXTS[name], "x.yaml")
    else:
        wf = compile_yaml_file(EXAMPLES / name)
    assert workflow_digest(wf) == PINNED[name]
