"""Supervision: restarts with fresh state, backoff on the injected clock, escalation."""

from __future__ import annotations

import anyio
import pytest
from actor_fakes import FakeClock

from tether.actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    EscalateStrategy,
    RestartStrategy,
    StopStrategy,
)

pytestmark = pytest.mark.anyio

FAST = RestartStrategy(max_restarts=3, backoff_initial_secs=0.0)


class Boom(Exception):
    pass


class Counter(Actor):
    """Counts 'inc'; 'boom' raises; 'gate' blocks until the shared gate opens."""

    def __init__(self, events: list[str], gate: anyio.Event | None = None) -> None:
        self.count = 0
        self.events = events
        self.gate = gate
        self.entered = anyio.Event()

    async def on_start(self) -> None:
        self.events.append(f"start {self.context.restart_count}")

    async def on_receive(self, message: object) -> object:
        if message == "gate":
            self.entered.set()
            assert self.gate is not None
            await self.gate.wait()
        elif message == "inc":
            self.count += 1
        elif message == "boom":
            raise Boom(f"boom in {self.context.name}")
        return self.count

    async def on_failure(self, error: BaseException) -> None:
        self.events.append(f"failure {error}")

    async def on_stop(self) -> None:
        self.events.append("stop")


class Escalations:
    def __init__(self) -> None:
        self.seen: list[tuple[ActorRef, BaseException]] = []
        self.event = anyio.Event()

    async def __call__(self, ref: ActorRef, error: BaseException) -> None:
        self.seen.append((ref, error))
        self.event.set()


async def test_tell_failure_restarts_with_fresh_state_and_keeps_the_mailbox(
    clock: FakeClock,
) -> None:
    events: list[str] = []
    gate = anyio.Event()
    instances: list[Counter] = []

    def make() -> Counter:
        instances.append(Counter(events, gate))
        return instances[-1]

    async with ActorSystem(clock=clock) as system:
        ref = await system.spawn(make, name="counter", strategy=FAST)
        await ref.tell("gate")
        await anyio.wait_all_tasks_blocked()  # the first instance sits in the gate
        for message in ["inc", "inc", "boom", "inc", "inc", "inc"]:
            await ref.tell(message)
        gate.set()
        assert await ref.ask("get") == 3  # fresh state, and no queued message was lost
        assert len(instances) == 2
        assert instances[1].context.self_ref is ref
        assert instances[1].context.restart_count == 1
        assert events == ["start 0", "failure boom in counter", "start 1"]
    assert events[-1] == "stop"  # only the healthy instance gets on_stop


async def test_restart_intensity_exceeded_escalates_to_the_parents_on_child_failure(
    clock: FakeClock,
) -> None:
    gate = anyio.Event()
    child_events: list[str] = []
    children: list[Counter] = []
    reported: list[tuple[str, BaseException]] = []
    reported_event = anyio.Event()

    def make_child() -> Counter:
        children.append(Counter(child_events, gate))
        return children[-1]

    class Parent(Actor):
        async def on_start(self) -> None:
            strategy = RestartStrategy(max_restarts=2, backoff_initial_secs=0.0)
            await self.context.spawn(make_child, name="child", strategy=strategy)

        async def on_receive(self, message: object) -> object:
            return [ref.name for ref in self.context.children]

        async def on_child_failure(self, child: ActorRef, error: BaseException) -> None:
            assert not child.is_alive
            reported.append((child.name, error))
            reported_event.set()

    async with ActorSystem(clock=clock) as system:
        parent = await system.spawn(Parent, name="parent")
        assert await parent.ask("children") == ["child"]
        child = system.get("child")
        assert child is not None
        await child.tell("gate")
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            await child.tell("boom")
        async with anyio.create_task_group() as tg:
            pending: list[BaseException] = []

            async def ask_behind_the_failures() -> None:
                try:
                    await child.ask("inc", timeout=None)
                except ActorStopped as error:
                    pending.append(error)

            tg.start_soon(ask_behind_the_failures)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        await reported_event.wait()
        assert [name for name, _ in reported] == ["child"]
        assert isinstance(reported[0][1], Boom)
        assert len(children) == 3  # two restarts, then the third failure escalated
        assert len(pending) == 1
        assert "'child'" in str(pending[0]) and "boom" in str(pending[0])
        assert not child.is_alive
        assert system.get("child") is None
        assert await parent.ask("children") == []  # the parent carries on


async def test_top_level_escalation_goes_to_on_escalation_and_others_carry_on(
    clock: FakeClock,
) -> None:
    escalations = Escalations()
    async with ActorSystem(clock=clock, on_escalation=escalations) as system:
        flaky = await system.spawn(
            lambda: Counter([]), name="flaky", strategy=RestartStrategy(max_restarts=1)
        )
        steady = await system.spawn(lambda: Counter([]), name="steady")
        await flaky.tell("boom")
        await flaky.tell("boom")
        await escalations.event.wait()
        assert [(ref.name, type(error)) for ref, error in escalations.seen] == [("flaky", Boom)]
        assert not flaky.is_alive
        await steady.tell("inc")
        assert await steady.ask("get") == 1


async def test_default_escalation_is_logged_and_the_system_carries_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with ActorSystem(clock=clock) as system:
        ref = await system.spawn(lambda: Counter([]), name="once", strategy=EscalateStrategy())
        await ref.tell("boom")
        with pytest.raises(ActorStopped, match="after failure"):
            await ref.ask("inc")
        other = await system.spawn(lambda: Counter([]), name="other")
        assert await other.ask("inc") == 1
    assert any("'once' escalated" in record.getMessage() for record in caplog.records)


async def test_on_start_failure_counts_as_a_failure(clock: FakeClock) -> None:
    attempts: list[int] = []

    class ShakyStart(Actor):
        async def on_start(self) -> None:
            attempts.append(self.context.restart_count)
            if len(attempts) < 3:
                raise Boom("not yet")

        async def on_receive(self, message: object) -> object:
            return self.context.restart_count

    async with ActorSystem(clock=clock) as system:
        ref = await system.spawn(ShakyStart, strategy=FAST)
        assert await ref.ask("count") == 2
    assert attempts == [0, 1, 2]


async def test_on_start_failing_for_ever_escalates(clock: FakeClock) -> None:
    escalations = Escalations()

    class NeverStarts(Actor):
        async def on_start(self) -> None:
            raise Boom("never")

    async with ActorSystem(clock=clock, on_escalation=escalations) as system:
        ref = await system.spawn(NeverStarts, name="never", strategy=FAST)
        await escalations.event.wait()
        assert escalations.seen[0][0] is ref
        with pytest.raises(ActorStopped):
            await ref.ask("x")
    assert len(clock.sleeps) == 3


async def test_backoff_is_exponential_capped_and_uses_the_injected_clock(
    clock: FakeClock,
) -> None:
    escalations = Escalations()
    strategy = RestartStrategy(
        max_restarts=5,
        within_secs=60.0,
        backoff_initial_secs=0.01,
        backoff_multiplier=2.0,
        backoff_max_secs=0.05,
    )
    async with ActorSystem(clock=clock, on_escalation=escalations) as system:
        ref = await system.spawn(lambda: Counter([]), name="backoff", strategy=strategy)
        for _ in range(5):
            await ref.tell("boom")
        assert await ref.ask("inc") == 1
        assert clock.sleeps == [0.01, 0.02, 0.04, 0.05, 0.05]
        # Once the window has passed, restarts count (and back off) from scratch again.
        clock.t += 61.0
        await ref.tell("boom")
        assert await ref.ask("inc") == 1
        assert clock.sleeps[-1] == 0.01
        for _ in range(5):
            await ref.tell("boom")
        await escalations.event.wait()  # the sixth failure inside one window
        assert len(clock.sleeps) == 10


async def test_stop_strategy_stops_without_escalating(clock: FakeClock) -> None:
    escalations = Escalations()
    gate = anyio.Event()
    events: list[str] = []
    instance = Counter(events, gate)
    async with ActorSystem(clock=clock, on_escalation=escalations) as system:
        ref = await system.spawn(lambda: instance, name="s", strategy=StopStrategy())
        await ref.tell("gate")
        await instance.entered.wait()
        await ref.tell("boom")
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def ask() -> None:
                try:
                    await ref.ask("inc", timeout=None)
                except ActorStopped as error:
                    outcome.append(error)

            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert len(outcome) == 1
        assert isinstance(outcome[0].__cause__, Boom)
        assert not ref.is_alive
    assert escalations.seen == []
    assert events == ["start 0", "failure boom in s"]  # no on_stop for the failed instance


async def test_parent_failing_in_on_child_failure_applies_its_own_strategy(
    clock: FakeClock,
) -> None:
    escalations = Escalations()
    parent_events: list[str] = []

    class Parent(Counter):
        async def on_start(self) -> None:
            await super().on_start()
            await self.context.spawn(lambda: Counter([]), name="kid", strategy=EscalateStrategy())

    async with ActorSystem(clock=clock, on_escalation=escalations) as system:
        parent = await system.spawn(
            lambda: Parent(parent_events), name="parent", strategy=EscalateStrategy()
        )
        await parent.ask("inc")
        kid = system.get("kid")
        assert kid is not None
        await kid.tell("boom")
        await escalations.event.wait()
        ref, error = escalations.seen[0]
        assert ref is parent and isinstance(error, Boom)
        assert parent_events == ["start 0", "failure boom in kid"]
        assert not parent.is_alive and not kid.is_alive


async def test_restarting_parent_restarts_its_children_from_on_start(clock: FakeClock) -> None:
    kid_events: list[str] = []

    class Parent(Actor):
        async def on_start(self) -> None:
            await self.context.spawn(lambda: Counter(kid_events), name="kid")

        async def on_receive(self, message: object) -> object:
            if message == "boom":
                raise Boom("parent")
            return self.context.restart_count

    async with ActorSystem(clock=clock) as system:
        parent = await system.spawn(Parent, name="parent", strategy=FAST)
        assert await parent.ask("restarts") == 0  # on_start has run
        old_kid = system.get("kid")
        assert old_kid is not None
        await parent.tell("boom")
        assert await parent.ask("restarts") == 1
        new_kid = system.get("kid")
        assert new_kid is not None and new_kid is not old_kid
        assert not old_kid.is_alive
        assert kid_events == ["start 0", "stop", "start 0"]


async def test_strategies_are_frozen_and_validated() -> None:
    strategy = RestartStrategy()
    with pytest.raises(AttributeError):
        strategy.max_restarts = 9  # type: ignore[misc]
    with pytest.raises(ValueError):
        RestartStrategy(max_restarts=-1)
    assert strategy.backoff(100) == strategy.backoff_max_secs
