"""Starting the runtime's own actors (what ``Runtime.__aenter__`` does after opening the
store and before recovering executions).

Example::

    await start_scheduling(system, services, tg, deliver, tell, executor=pool, capacity=64,
                           lease_ttl_ms=5_000)
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final

import anyio.abc

from tether.actors import ActorSystem
from tether.errors import InvalidInput
from tether.runtime.executor import NodeExecutor, NodeOutcome
from tether.runtime.ledger import Credit
from tether.runtime.local_workers import LocalWorkers
from tether.runtime.planner import SEGMENT_MARK
from tether.runtime.scheduler import SchedulerActor
from tether.runtime.scheduler_messages import GetLeases
from tether.runtime.schedules import EXECUTION_PREFIX as SCHEDULED_PREFIX
from tether.runtime.services import Services
from tether.runtime.timers import TimerActor

#: The runtime's own actors are named with this prefix (execution actors by execution id).
RESERVED_PREFIX = "tether."
SCHEDULER_NAME = RESERVED_PREFIX + "scheduler"
TIMERS_NAME = RESERVED_PREFIX + "timers"
CRON_NAME = RESERVED_PREFIX + "cron"


#: An execution id a remote client gives: what a URL path segment, a work-item id
#: (``execution/node/dispatch``) and a log line carry as they are.
CLIENT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
CLIENT_ID_RULE: Final = "1-128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or a digit"


def check_client_id(execution_id: str) -> None:
    """Refuse an execution id a remote client gives (over HTTP) that no REST call could
    reach again, or that pre-empts one the runtime will make: :data:`CLIENT_ID_RULE`, and
    not ``sched_...``, the ids the cron actor starts its fires under.

    Example::

        check_client_id("order-1234")          # fine
        check_client_id("../etc")              # InvalidInput naming the rule
    """
    if not CLIENT_ID.fullmatch(execution_id):
        shown = repr(execution_id[:64]) + ("..." if len(execution_id) > 64 else "")
        raise InvalidInput(f"execution id {shown}: use {CLIENT_ID_RULE}")
    if execution_id.startswith(SCHEDULED_PREFIX):
        raise InvalidInput(
            f"execution id {execution_id!r}: ids starting with {SCHEDULED_PREFIX!r} are the "
            "cron schedules' fires"
        )
    check_given_id(execution_id)


def check_given_id(execution_id: str) -> None:
    """Refuse an execution id a user gives that the runtime keeps for itself."""
    if execution_id.startswith(RESERVED_PREFIX):
        raise InvalidInput(
            f"execution id {execution_id!r}: ids starting with {RESERVED_PREFIX!r} "
            "name the runtime's own actors"
        )
    if SEGMENT_MARK in execution_id:
        raise InvalidInput(
            f"execution id {execution_id!r}: {SEGMENT_MARK!r} is reserved for the ids "
            "of continued segments"
        )


async def start_scheduling(
    system: ActorSystem,
    services: Services,
    tg: anyio.abc.TaskGroup,
    deliver: Callable[[NodeOutcome], Awaitable[bool]],
    tell_execution: Callable[[str, object], Awaitable[bool]],
    *,
    executor: NodeExecutor | None,
    capacity: int,
    lease_ttl_ms: int,
) -> None:
    """Spawn the scheduler and the timer actor and bind the in-process pool (if any); returns
    once the scheduler has recovered the open work items."""
    store, clock, ledger = services.store, services.clock, services.ledger
    scheduler = await system.spawn(
        lambda: SchedulerActor(
            store,
            clock,
            deliver,
            tg,
            ledger,
            lease_ttl_ms=lease_ttl_ms,
            counters=services.counters,
            announced=services.announced,
        ),
        name=SCHEDULER_NAME,
        mailbox_size=1 << 16,
    )
    services.attach_scheduler(scheduler, tg)
    services.lease_ttl_ms = lease_ttl_ms
    services.timers = await system.spawn(
        lambda: TimerActor(clock, tell_execution, tg), name=TIMERS_NAME, mailbox_size=1 << 16
    )
    await scheduler.ask(GetLeases(), timeout=None)  # its recovery is done
    if executor is not None:
        # Bound now (executions created from here on take its credit), joined to the
        # scheduler only by join_local_pool, after recovery.
        local = LocalWorkers(executor, Credit(capacity), deliver)
        local.bind(tg)
        services.local = local


async def join_local_pool(services: Services) -> None:
    """Let the scheduler grant open items to the in-process pool. Called once recovery has
    spawned every unfinished execution: an outcome must find its execution's actor."""
    if services.local is not None and services.scheduler is not None:
        # The pool serves every queue but the remote-only ones: learn them all first.
        await services.load_unfinished_workflows()
        joined = replace(services.local.joined(), excluded=services.remote_queues)
        await services.scheduler.tell(joined)
