"""Code-first workflows and steps the tests share (module level, as users write them)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

from tether import (
    ChildFailed,
    RateLimited,
    StepFailed,
    WorkflowContext,
    current_context,
    step,
    workflow,
)

#: Every step call that really ran, in order (tests clear it).
RAN: list[str] = []


@step
async def double(x: int) -> int:
    RAN.append(f"double({x})")
    return x * 2


@step
async def add(a: int, b: int) -> int:
    RAN.append(f"add({a},{b})")
    return a + b


@step(retry={"max_attempts": 3, "backoff_initial_secs": 0, "jitter": 0})
async def flaky(key: str, fail_times: int) -> str:
    RAN.append(f"flaky({key})")
    if RAN.count(f"flaky({key})") <= fail_times:
        raise ConnectionError(f"flaky {key} is down")
    return f"{key} ok"


@step(retry={"max_attempts": 1})
async def broken(why: str) -> None:
    RAN.append("broken")
    raise ValueError(why)


@workflow(id="pipeline", version="1")
async def pipeline(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    a = await double(data["n"])
    b, c = await asyncio.gather(double(a), add(a, 1))
    return {"a": a, "b": b, "c": c, "at": ctx.now().isoformat(), "id": ctx.uuid()}


@workflow(id="resilient", version="1")
async def resilient(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    got = await flaky("svc", data.get("fail_times", 1))
    try:
        await broken("no such order")
    except StepFailed as exc:
        return {"got": got, "handled": exc.error}
    return {"got": got, "handled": None}


@workflow(id="unhandled", version="1")
async def unhandled(ctx: WorkflowContext) -> None:
    await broken("card declined")


@workflow(id="waits", version="1")
async def waits(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    await ctx.sleep("1h")
    decision = await ctx.approval("pay", description=f"pay {data['amount']}?", timeout="1d")
    try:
        event = await ctx.wait_event("cleared", timeout="2d")
    except TimeoutError:
        event = None
    return {"decision": decision.decision, "by": decision.user_id, "event": event}


@workflow(id="sleeps_wrong", version="1")
async def sleeps_wrong(ctx: WorkflowContext) -> None:
    await asyncio.sleep(1)  # not durable: refused with a message


async def _two_calls(x: int) -> int:
    return await double(await add(x, 1))


@workflow(id="program", version="1")
async def program(ctx: WorkflowContext, data: dict[str, Any]) -> list[Any]:
    """Runs the calls its input lists: what the property tests generate."""
    out: list[Any] = []
    for op, arg in data["ops"]:
        if op == "step":
            out.append(await double(arg))
        elif op == "gather":
            out.append(list(await asyncio.gather(*(add(x, i) for i, x in enumerate(arg)))))
        elif op == "branches":  # several calls per branch: they interleave turn by turn
            out.append(list(await asyncio.gather(*(_two_calls(x) for x in arg))))
        elif op == "value":
            out.append(len(ctx.uuid()) + int(ctx.random() >= 0) + int(ctx.now().year > 2000))
        elif op == "sleep":
            await ctx.sleep(0)
        elif op == "flaky":
            out.append(await flaky(f"k{len(out)}", arg))
    return out


@workflow(id="rounds", version="1")
async def rounds(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Counts to ``upto`` one step per segment (continue-as-new keeps each journal short)."""
    total = await add(data["total"], data["round"])
    if data["round"] < data["upto"]:
        ctx.continue_as_new({**data, "round": data["round"] + 1, "total": total})
    return {"total": total, "rounds": data["round"]}


@step(retry={"max_attempts": 2, "backoff_initial_secs": 0, "jitter": 0})
async def throttled(key: str) -> str:
    RAN.append(f"throttled({key})")
    if RAN.count(f"throttled({key})") <= 2:
        raise RateLimited(30, "provider: 429")  # parks: no attempt spent
    return "served"


@step(timeout="1s", retry={"max_attempts": 1})
async def stuck() -> None:
    RAN.append("stuck")
    await anyio.sleep_forever()


@workflow(id="limits", version="1")
async def limits(ctx: WorkflowContext) -> dict[str, Any]:
    served = await throttled("a")
    try:
        await stuck()
    except StepFailed as exc:
        return {"served": served, "timeout": exc.error}
    return {"served": served, "timeout": None}


@workflow(id="long_wait", version="1")
async def long_wait(ctx: WorkflowContext) -> None:
    await double(1)
    await ctx.wait_event("never")


@workflow(id="many", version="1")
async def many(ctx: WorkflowContext, data: dict[str, Any]) -> int:
    total = 0
    for i in range(data["steps"]):
        total += await double(i)
    decision = await ctx.approval("done?")
    return total if decision.approved else -1


async def _doubled(values: list[int]) -> Any:
    for v in values:  # an async generator in the body: it must live and die on the body's loop
        yield await double(v)


@workflow(id="libraries", version="1")
async def libraries(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """What libraries do in a body: anyio task groups, async generators, current_context."""
    results: list[int] = []

    async def one(v: int) -> None:
        results.append(await add(v, 100))

    async with anyio.create_task_group() as tg:
        for v in data["values"]:
            tg.start_soon(one, v)
    gen = [x async for x in _doubled(data["values"])]
    unfinished = _doubled(data["values"])
    first = await unfinished.__anext__()  # left unfinished when the run pauses
    decision = await ctx.approval("ok")
    same = current_context() is ctx
    return {"added": sorted(results), "doubled": gen, "first": first, "ok": decision.approved,
            "same_ctx": same}  # fmt: skip


@workflow(id="child_sum", version="1")
async def child_sum(ctx: WorkflowContext, data: dict[str, Any]) -> int:
    total = 0
    for v in data["values"]:
        total += await double(v)
    if data.get("wait"):
        await ctx.approval("child-ok")
    if total < 0:
        raise ValueError("negative")
    return total


@workflow(id="parent", version="1")
async def parent(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    first = await ctx.child(child_sum, {"values": data["values"], "wait": data.get("wait")})
    both = await asyncio.gather(
        ctx.child(child_sum, {"values": [1]}), ctx.child("child_sum@1", {"values": [2]})
    )
    try:
        await ctx.child(child_sum, {"values": [-5]})
        failed = None
    except ChildFailed as exc:
        failed = exc.status
    return {"first": first, "both": list(both), "failed": failed}


@workflow(id="branches", version="1")
async def branches(ctx: WorkflowContext, data: dict[str, Any]) -> list[Any]:
    """Two branches of several calls each: live they interleave, one completion per turn."""

    async def a() -> Any:
        v = await double(1)
        d = await ctx.approval("A")
        return [v, d.decision, await add(v, 1)]

    async def b() -> Any:
        d = await ctx.approval("B")
        return [d.decision, await double(5)]

    return list(await asyncio.gather(a(), b()))


@workflow(id="parent_of_rounds", version="1")
async def parent_of_rounds(ctx: WorkflowContext) -> Any:
    """A child that continues as new twice before it ends."""
    return await ctx.child(rounds, {"round": 1, "upto": 3, "total": 0})
