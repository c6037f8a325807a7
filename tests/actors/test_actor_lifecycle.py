"""Lifecycle: orderly stops (drain or not), stop order in trees, shutdown, cancellation."""

from __future__ import annotations

import anyio
import pytest

from tether.actors import Actor, ActorStopped, ActorSystem, RestartStrategy

pytestmark = pytest.mark.anyio


class Node(Actor):
    """Spawns the named children on start; records on_stop; a gate blocks one message."""

    def __init__(
        self,
        stops: list[str],
        tree: dict[str, list[str]] | None = None,
        gate: anyio.Event | None = None,
    ) -> None:
        self.stops = stops
        self.tree = tree or {}
        self.gate = gate
        self.processed: list[object] = []

    async def on_start(self) -> None:
        for child in self.tree.get(self.context.name, []):
            await self.context.spawn(lambda: Node(self.stops, self.tree), name=child)

    async def on_receive(self, message: object) -> object:
        if message == "gate":
            assert self.gate is not None
            await self.gate.wait()
        elif message == "children":
            return [child.name for child in self.context.children]
        elif message == "stop-self":
            await self.context.self_ref.stop()
        elif message == "stop-parent":
            assert self.context.parent is not None
            await self.context.parent.stop()
        self.processed.append(message)
        return list(self.processed)

    async def on_stop(self) -> None:
        self.stops.append(self.context.name)


async def test_stop_with_drain_processes_pending_messages_first() -> None:
    gate = anyio.Event()
    stops: list[str] = []
    instance = Node(stops, gate=gate)
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: instance, name="drainer")
        await ref.tell("gate")
        await anyio.wait_all_tasks_blocked()
        for i in range(3):
            await ref.tell(i)
        answers: list[object] = []

        async def ask() -> None:
            answers.append(await ref.ask("last"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(ref.stop, True)
            await anyio.wait_all_tasks_blocked()
            assert not ref.is_alive  # refuses new messages from the moment stop is asked
            with pytest.raises(ActorStopped):
                await ref.tell("too late")
            gate.set()
        assert instance.processed == ["gate", 0, 1, 2, "last"]
        assert answers == [["gate", 0, 1, 2, "last"]]
        assert stops == ["drainer"]
    assert stops == ["drainer"]  # on_stop ran exactly once


async def test_stop_without_drain_answers_pending_asks_with_actor_stopped() -> None:
    gate = anyio.Event()
    stops: list[str] = []
    instance = Node(stops, gate=gate)
    async with ActorSystem() as system:
        ref = await system.spawn(lambda: instance, name="quitter")
        await ref.tell("gate")
        await anyio.wait_all_tasks_blocked()
        await ref.tell("dropped")
        errors: list[ActorStopped] = []

        async def ask(message: str) -> None:
            try:
                await ref.ask(message)
            except ActorStopped as error:
                errors.append(error)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, "a")
            tg.start_soon(ask, "b")
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(ref.stop, False)
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert [str(error) for error in errors] == ["actor 'quitter' stopped"] * 2
        assert instance.processed == ["gate"]
        assert stops == ["quitter"]


async def test_children_stop_before_their_parent_newest_first() -> None:
    stops: list[str] = []
    tree = {"root": ["c1", "c2"], "c1": ["g1", "g2"]}
    async with ActorSystem() as system:
        root = await system.spawn(lambda: Node(stops, tree), name="root")
        await root.ask("sync")
        c1 = system.get("c1")
        assert c1 is not None
        assert await c1.ask("children") == ["g1", "g2"]
        await root.stop()
        assert stops == ["c2", "g2", "g1", "c1", "root"]
        assert all(system.get(name) is None for name in ["root", "c1", "c2", "g1", "g2"])


async def test_system_shutdown_stops_top_level_actors_newest_first_children_first() -> None:
    stops: list[str] = []
    tree = {"b": ["b1"]}
    async with ActorSystem() as system:
        for name in ["a", "b", "c"]:
            ref = await system.spawn(lambda: Node(stops, tree), name=name)
            await ref.ask("sync")
        b1 = system.get("b1")
        assert b1 is not None
        await b1.ask("sync")
    assert stops == ["c", "b1", "b", "a"]


async def test_explicit_shutdown_then_exit() -> None:
    stops: list[str] = []
    async with ActorSystem() as system:
        await system.spawn(lambda: Node(stops), name="x")
        await system.shutdown()
        assert stops == ["x"]
        with pytest.raises(RuntimeError):
            await system.spawn(lambda: Node(stops))
        await system.shutdown()  # twice is fine
    assert stops == ["x"]


async def test_an_actor_can_stop_itself_and_its_parent_from_a_handler() -> None:
    stops: list[str] = []
    async with ActorSystem() as system:
        solo = await system.spawn(lambda: Node(stops), name="solo")
        await solo.ask("stop-self")
        await solo.stop()  # waits for the stop the handler asked for
        assert stops == ["solo"]
        parent = await system.spawn(lambda: Node(stops, {"parent": ["kid"]}), name="parent")
        await parent.ask("sync")
        kid = system.get("kid")
        assert kid is not None
        await kid.ask("stop-parent")
        await parent.stop()
        assert stops == ["solo", "kid", "parent"]


async def test_cancelling_the_system_stops_actors_without_hanging() -> None:
    stops: list[str] = []
    never = anyio.Event()
    with anyio.fail_after(5):  # a guard: the test fails rather than hangs
        with anyio.CancelScope() as outer:
            async with ActorSystem() as system:
                ref = await system.spawn(lambda: Node(stops, gate=never), name="stuck")
                await ref.tell("gate")
                await anyio.wait_all_tasks_blocked()
                outer.cancel()
                await anyio.sleep_forever()
        assert outer.cancelled_caught
    assert not ref.is_alive
    assert stops == []  # a cancelled actor gets no on_stop
    with pytest.raises(ActorStopped):
        await ref.ask("x")


async def test_an_error_in_the_body_propagates_unwrapped_and_cancels_actors() -> None:
    never = anyio.Event()
    with pytest.raises(LookupError, match="body"):
        async with ActorSystem() as system:
            ref = await system.spawn(lambda: Node([], gate=never), name="stuck")
            await ref.tell("gate")
            await anyio.wait_all_tasks_blocked()
            raise LookupError("body")
    assert not ref.is_alive


async def test_pending_ask_from_outside_gets_actor_stopped_on_cancellation() -> None:
    never = anyio.Event()
    outcome: list[BaseException] = []
    async with anyio.create_task_group() as outside:
        with anyio.CancelScope() as scope:
            async with ActorSystem() as system:
                ref = await system.spawn(lambda: Node([], gate=never), name="stuck")

                async def ask() -> None:
                    try:
                        await ref.ask("gate", timeout=None)
                    except ActorStopped as error:
                        outcome.append(error)

                outside.start_soon(ask)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
                await anyio.sleep_forever()
    assert len(outcome) == 1


async def test_stop_cuts_a_restart_backoff_short() -> None:
    class SlowClock:
        def now(self) -> float:
            return 0.0

        def monotonic(self) -> float:
            return 0.0

        async def sleep(self, seconds: float) -> None:
            await anyio.sleep_forever()

    class Fragile(Node):
        async def on_receive(self, message: object) -> object:
            if message == "boom":
                raise RuntimeError("boom")
            return await super().on_receive(message)

    stops: list[str] = []
    async with ActorSystem(clock=SlowClock()) as system:
        ref = await system.spawn(
            lambda: Fragile(stops), name="fragile", strategy=RestartStrategy(max_restarts=5)
        )
        await ref.tell("boom")
        await ref.tell("after")
        await anyio.wait_all_tasks_blocked()  # in the (endless) backoff sleep
        with anyio.fail_after(5):
            await ref.stop()
    assert stops == ["fragile"]  # the fresh instance drained "after" and stopped


async def test_shutdown_from_inside_an_actor_does_not_hang() -> None:
    stops: list[str] = []

    class Stopper(Node):
        async def on_receive(self, message: object) -> object:
            if message == "shutdown":
                await self.context.system.shutdown()
            return await super().on_receive(message)

    with anyio.fail_after(5):
        async with ActorSystem() as system:
            await system.spawn(lambda: Node(stops, {"a": ["a1"]}), name="a")
            stopper = await system.spawn(lambda: Stopper(stops, {"s": ["s1"]}), name="s")
            await system.spawn(lambda: Node(stops), name="z")
            await stopper.ask("sync")
            await stopper.tell("shutdown")
            await stopper.stop()
    # "s" cannot finish stopping inside its own handler, so "a" may go before it.
    assert stops[0] == "z" and sorted(stops) == ["a", "a1", "s", "s1", "z"]
    assert stops.index("s1") < stops.index("s") and stops.index("a1") < stops.index("a")
