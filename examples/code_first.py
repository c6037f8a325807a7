"""A code-first durable workflow: plain async functions, journaled call by call.

    python examples/code_first.py          # runs an order end to end, approving it itself

The order's steps run on the runtime's pool (or on `tether worker --modules code_first`
processes); the workflow body waits for a person when the risk is high. Kill the process at
any point and run it again: the run resumes from its journal, and no completed step runs twice.
With `tether dev --modules code_first` (from this folder) the engine serves it:
`tether run order --input '{"order_id": "A-1"}'`, then `tether approve EXEC approved`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tether import Runtime, WorkflowContext, step, workflow


@step(retry={"max_attempts": 3}, timeout="30s")
async def fetch_order(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "amount": 120.0, "country": "FR", "items": 3}


@step
async def score_risk(order: dict[str, Any]) -> float:
    return 0.8 if order["amount"] > 100 else 0.1


@step
async def check_stock(order: dict[str, Any]) -> bool:
    return order["items"] <= 10


@step(retry={"max_attempts": 5, "backoff_initial_secs": 1})
async def charge(order_id: str, amount: float) -> dict[str, Any]:
    return {"order": order_id, "charged": amount, "ref": f"ch_{order_id}"}


@workflow(id="order", version="1")
async def order(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Fetch an order, score it and check stock in parallel, ask a person if it is risky,
    then charge it."""
    found = await fetch_order(data["order_id"])
    risk, in_stock = await asyncio.gather(score_risk(found), check_stock(found))
    if not in_stock:
        return {"order": found["id"], "status": "out of stock"}
    if risk > 0.5:
        decision = await ctx.approval(
            "review", description=f"order {found['id']}: risk {risk:.1f}", timeout="1d"
        )
        if not decision.approved:
            return {"order": found["id"], "status": decision.decision, "by": decision.user_id}
    receipt = await charge(found["id"], found["amount"])
    return {"order": found["id"], "status": "charged", "receipt": receipt, "at": str(ctx.now())}


async def main(db: Path) -> None:
    async with Runtime(f"sqlite:///{db}", workflows=[order]) as rt:
        run = await rt.start(order, {"order_id": "A-1"})
        print(f"started {run.id}")
        while (await rt.get_execution(run.id)).status != "paused":
            await asyncio.sleep(0.01)  # a demo waiting for its own run to reach the approval
        [pending] = await rt.pending_approvals()
        print(f"waiting for a person at {pending.node_id}: {pending.description}")
        await rt.approve(run.id, "approved", "demo@example.com")
        print(f"result: {await run.result()}")
        for entry in await rt.journal(run.id):
            print(f"  {entry.seq:2} {entry.type:<20} {getattr(entry.record, 'node_id', '')}")


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".tether") / "code_first.db"
    where.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(where))
