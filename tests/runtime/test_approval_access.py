"""Who may decide a human approval and what a decision may say (I14 every peer is someone):
``approvers`` lists, bounded and validated user ids and comments, ``patchable`` keys. A
refused decision leaves no record."""

from __future__ import annotations

import pytest
from test_runtime_approvals import paused, pay

from tether import ApproverNotAllowed, InvalidInput, Runtime
from tether.ir import compile_yaml_text
from tether.ir.errors import WorkflowInvalid
from tether.testing import check_replay

pytestmark = pytest.mark.anyio


GUARDED = """
workflow:
  id: guarded
  version: "1"
  start: review
  state_schema: {amount: {type: integer}, note: {type: string, default: ""}}
nodes:
  review:
    type: human_approval
    description: Pay?
    approvers: [alice, "role:finance"]
    patchable: [note, amount]
    next: pay
  pay: {type: tool, tool: pay, input: {amount: $amount}, output_key: note, next: end}
"""

OPEN = """
workflow: {id: open, version: "1", start: review, state_schema: {amount: {type: integer}}}
nodes:
  review: {type: human_approval, description: "Pay?", next: pay}
  pay: {type: tool, tool: pay, input: {amount: $amount}, next: end}
"""


async def decisions(rt: Runtime, run_id: str) -> int:
    return [e.type for e in await rt.journal(run_id)].count("approval_received")


async def test_an_unlisted_approver_is_refused_and_nothing_is_journaled_I14(db_url: str) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(GUARDED, "g.yaml")), {"amount": 5})
        await paused(rt, run.id)
        with pytest.raises(ApproverNotAllowed, match=r"'mallory' may not decide .* 'review'"):
            await rt.approve(run.id, "approved", "mallory")
        with pytest.raises(ApproverNotAllowed):  # a role the list does not name
            await rt.approve(run.id, "approved", "mallory", roles=["ops"])
        assert await decisions(rt, run.id) == 0
        await rt.approve(run.id, "approved", "dana", roles=["finance"])  # by role
        assert (await run.result(timeout=10))["note"] == "paid 5"
        await check_replay(rt, run.id)


async def test_a_listed_user_decides(db_url: str) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(GUARDED, "g.yaml")), {"amount": 5})
        await paused(rt, run.id)
        await rt.approve(run.id, "approved", "alice", comment="line one\n\tline two")
        [decision] = [e.record for e in await rt.journal(run.id) if e.type == "approval_received"]
        assert decision.user_id == "alice"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "user_id",
    ["", " alice", "alice\x00", "ali\u202ece", "a" * 129, "x\u202e" + "y" * 100_000, "a\nb",
     "tether:timeout"],
)  # fmt: skip
async def test_bad_user_ids_are_refused_with_the_rule_I10(db_url: str, user_id: str) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(OPEN, "o.yaml")), {"amount": 1})
        await paused(rt, run.id)
        with pytest.raises(InvalidInput, match="user_id"):
            await rt.approve(run.id, "approved", user_id)
        assert await decisions(rt, run.id) == 0


@pytest.mark.parametrize(
    ("comment", "why"),
    [("x" * 4097, "at most 4096"), ("ok\x00", "U\\+0000"), ("ok\u202e", "U\\+202E"),
     ("\x1b[31mred", "U\\+001B")],
)  # fmt: skip
async def test_bad_comments_are_refused_with_the_rule_I10(
    db_url: str, comment: str, why: str
) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(OPEN, "o.yaml")), {"amount": 1})
        await paused(rt, run.id)
        with pytest.raises(InvalidInput, match=f"comment .*{why}|{why}"):
            await rt.approve(run.id, "approved", "alice", comment=comment)
        assert await decisions(rt, run.id) == 0
        await rt.approve(run.id, "approved", "alice", comment="x" * 4096)  # the bound itself


async def test_a_patch_may_set_only_patchable_keys(db_url: str) -> None:
    async with Runtime(db_url, tools=[pay]) as rt:
        open_run = await rt.start(rt.register(compile_yaml_text(OPEN, "o.yaml")), {"amount": 1})
        await paused(rt, open_run.id)
        # No patchable list: no patch at all (the safe default).
        with pytest.raises(InvalidInput, match="does not let a decision set 'amount'"):
            await rt.approve(open_run.id, "approved", "alice", state_patch={"amount": 10**6})
        assert await decisions(rt, open_run.id) == 0

        run = await rt.start(rt.register(compile_yaml_text(GUARDED, "g.yaml")), {"amount": 5})
        await paused(rt, run.id)
        with pytest.raises(InvalidInput, match="does not let a decision set 'owner'"):
            await rt.approve(run.id, "approved", "alice", state_patch={"owner": "mallory"})
        with pytest.raises(InvalidInput, match="amount"):  # patchable, but typed
            await rt.approve(run.id, "approved", "alice", state_patch={"amount": "lots"})
        assert await decisions(rt, run.id) == 0
        await rt.approve(run.id, "approved", "alice", state_patch={"amount": 7})
        assert (await run.result(timeout=10))["note"] == "paid 7"


def test_the_ir_refuses_bad_approvers_and_undeclared_patchable_keys() -> None:
    bad = GUARDED.replace('[alice, "role:finance"]', '["al\\u202eice", "role:"]').replace(
        "[note, amount]", "[note, owner]"
    )
    with pytest.raises(WorkflowInvalid) as refused:
        compile_yaml_text(bad, "b.yaml")
    issues = {i.path: i.message for i in refused.value.issues}
    assert "printable" in issues["nodes.review.kind.approvers.0"]
    assert "role name" in issues["nodes.review.kind.approvers.1"]
    assert "'owner' is not in the state_schema" in issues["nodes.review.kind.patchable.1"]
    empty = GUARDED.replace('[alice, "role:finance"]', "[]")
    with pytest.raises(WorkflowInvalid, match="lets nobody decide"):
        compile_yaml_text(empty, "e.yaml")
