"""The fold's failure rule with lease losses (issue 19, item 4): a lease lost to a dead or
silent worker spends no attempt up to ``max_lease_losses``; records without a cause (every
journal from before it) fold exactly as before; the cap is part of the workflow's content
only when it is set (digests of stored versions do not move)."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowError
from tether.ir.identity import workflow_digest
from tether.ir.types import RetryPolicy
from tether.runtime.fold_routes import losses_after, will_retry
from tether.runtime.graph import Graph
from tether.runtime.planner import PlanContext, plan_turn
from tether.runtime.records import CAUSE_LEASE_LOST, ExecutionStarted, NodeFailed, NodeScheduled
from tether.runtime.state import ExecutionState


def failed(
    attempt: int, *, cause: str = "", retryable: bool = True, error_type: str = "E"
) -> NodeFailed:
    return NodeFailed(
        at_ms=0, node_id="n", dispatch=attempt, attempt=attempt, error="boom",
        error_type=error_type, retryable=retryable, cause=cause,
    )  # fmt: skip


def fold_failures(policy: RetryPolicy, causes: list[str]) -> tuple[list[bool], int]:
    """Each failure's verdict, tries numbered 1, 2, ... as the planner numbers them."""
    losses, verdicts = 0, []
    for attempt, cause in enumerate(causes, start=1):
        rec = failed(attempt, cause=cause)
        verdicts.append(will_retry(policy, rec, losses))
        losses = losses_after(policy, rec, losses)
    return verdicts, losses


@given(
    attempt=st.integers(1, 20),
    max_attempts=st.integers(1, 20),
    retryable=st.booleans(),
    error_type=st.sampled_from(["E", "F"]),
    retry_on=st.sampled_from([[], ["E"], ["F"]]),
)
def test_records_without_a_cause_fold_as_before(
    attempt: int, max_attempts: int, retryable: bool, error_type: str, retry_on: list[str]
) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, retry_on=retry_on)
    rec = failed(attempt, retryable=retryable, error_type=error_type)
    before = retryable and (not retry_on or error_type in retry_on) and attempt < max_attempts
    assert will_retry(policy, rec) is before
    assert losses_after(policy, rec, 0) == 0


def test_lease_losses_are_free_up_to_the_cap_then_spend_attempts() -> None:
    policy = RetryPolicy(max_attempts=1, max_lease_losses=2)
    lost = CAUSE_LEASE_LOST
    assert fold_failures(policy, [lost, lost]) == ([True, True], 2)
    # The third loss is past the cap: it is the node's one attempt, and it is spent.
    assert fold_failures(policy, [lost, lost, lost]) == ([True, True, False], 2)
    # The tool's own failure after two free losses: try 3 is its first attempt.
    assert fold_failures(RetryPolicy(max_attempts=2, max_lease_losses=2), [lost, lost, "", ""]) == (
        [True, True, True, False],
        2,
    )
    # A cap of 0: every loss spends an attempt, as before the cause existed.
    assert fold_failures(RetryPolicy(max_attempts=3, max_lease_losses=0), [lost] * 3) == (
        [True, True, False],
        0,
    )


@given(
    causes=st.lists(st.sampled_from(["", CAUSE_LEASE_LOST]), min_size=1, max_size=30),
    max_attempts=st.integers(1, 6),
    cap=st.integers(0, 6),
)
def test_a_node_always_stops_within_attempts_plus_cap_tries(
    causes: list[str], max_attempts: int, cap: int
) -> None:
    """However its tries fail, a node is retried at most max_attempts + cap - 1 times: a
    tool that kills its worker every time is still stopped."""
    verdicts, losses = fold_failures(
        RetryPolicy(max_attempts=max_attempts, max_lease_losses=cap), causes
    )
    tries = verdicts.index(False) + 1 if False in verdicts else len(verdicts) + 1
    assert tries <= max_attempts + cap
    assert losses <= cap
    tool_failures = sum(1 for c in causes[:tries] if c == "")
    assert tool_failures <= max_attempts


HOLD = """
workflow: {{id: w, version: "1"}}
nodes:
  s: {{type: tool, tool: t, retry: {retry}}}
"""


def test_the_cap_is_in_yaml_and_a_default_leaves_the_digest_alone() -> None:
    plain = compile_yaml_text(HOLD.format(retry="{max_attempts: 3}"), "a.yaml")
    default = compile_yaml_text(
        HOLD.format(retry="{max_attempts: 3, max_lease_losses: 5}"), "a.yaml"
    )
    capped = compile_yaml_text(
        HOLD.format(retry="{max_attempts: 3, max_lease_losses: 1}"), "a.yaml"
    )
    policy = capped.nodes["s"].retry_policy
    assert isinstance(policy, RetryPolicy) and policy.max_lease_losses == 1
    assert workflow_digest(plain) == workflow_digest(default) != workflow_digest(capped)
    # The digest of a version stored before the field existed (computed on main at b0fd363).
    assert workflow_digest(plain) == PLAIN_DIGEST
    with pytest.raises(WorkflowError, match="max_lease_losses must not be negative"):
        compile_yaml_text(HOLD.format(retry="{max_lease_losses: -1}"), "a.yaml")


PLAIN_DIGEST = "sha256:342946dbb129434cb7349a04c9d28e94ad32e6c85b84ac4120680549ad278e95"


# The backoff a retry waits (planner.retry_not_before), through the real fold and planner.


def _tool_graph(policy: RetryPolicy) -> Graph:
    wf = compile_yaml_text(
        "workflow: {id: w, version: '1'}\n"
        "nodes:\n  t: {type: tool, tool_ref: t, next: done}\n  done: {type: end}\n"
    )
    nodes = {**wf.nodes, "t": msgspec.structs.replace(wf.nodes["t"], retry_policy=policy)}
    return Graph(msgspec.structs.replace(wf, nodes=nodes))


def _hand_outs(policy: RetryPolicy, causes: list[str]) -> list[NodeScheduled]:
    """Each hand-out of node t while its tries fail with ``causes`` in turn, at time 1000."""
    graph = _tool_graph(policy)
    ctx = PlanContext(now_ms=1000, rng=random.Random(7), bind=lambda node, data: {})
    start = ExecutionStarted(at_ms=0, execution_id="e", workflow_id="w", workflow_version="1")
    state, records, _ = plan_turn(ExecutionState(), graph, start, ctx)
    out = [r for r in records if isinstance(r, NodeScheduled)]
    for cause in causes:
        last = out[-1]
        fail = NodeFailed(
            at_ms=1000, node_id="t", dispatch=last.dispatch, attempt=last.attempt,
            error="boom", error_type="E", retryable=True, cause=cause,
        )  # fmt: skip
        state, records, _ = plan_turn(state, graph, fail, ctx)
        again = [r for r in records if isinstance(r, NodeScheduled)]
        if not again:
            break
        out += again
    return out


@given(causes=st.lists(st.sampled_from([CAUSE_LEASE_LOST, ""]), min_size=1, max_size=12))
def test_a_free_lease_loss_retries_at_once_and_never_lengthens_a_later_backoff(
    causes: list[str],
) -> None:
    policy = RetryPolicy(
        max_attempts=20, max_lease_losses=3, backoff_initial_secs=1.0, backoff_multiplier=2.0,
        backoff_max_secs=1000.0, jitter=0.0,
    )  # fmt: skip
    hand_outs = _hand_outs(policy, causes)
    losses = 0
    for cause, retry in zip(causes, hand_outs[1:], strict=False):
        free = cause == CAUSE_LEASE_LOST and losses < policy.max_lease_losses
        losses += free
        if free:
            assert retry.not_before_ms is None, (causes, retry)
        else:  # the policy's backoff for the attempts spent, the free losses left out
            spent = retry.attempt - losses
            assert retry.not_before_ms == 1000 + 1000 * 2 ** (spent - 2), (causes, retry)
