"""A stopped actor is freed by reference counting, without waiting for a cyclic collection.

Execution actors are short-lived and numerous: when each finished one stayed in reference
cycles, thousands of them waited in the oldest GC generation and made full collections a
large share of a step's cost.
"""

from __future__ import annotations

import gc
import weakref

import anyio
import pytest

from tether.actors import Actor, ActorStopped, ActorSystem

pytestmark = pytest.mark.anyio


class Echo(Actor):
    async def on_receive(self, message: object) -> object:
        return message


async def test_stopped_actor_is_freed_without_the_cyclic_gc() -> None:
    async with ActorSystem() as system:
        gc.collect()
        gc.disable()
        try:
            instances: list[Echo] = []

            def make() -> Echo:
                instances.append(Echo())
                return instances[-1]

            ref = await system.spawn(make, name="echo")
            assert await ref.ask("hi") == "hi"
            freed = anyio.Event()
            weakref.finalize(instances.pop(), freed.set)
            await ref.stop()
            # However many turns the task group takes to drop the finished actor's task; with
            # the cyclic GC off, an instance kept in a cycle is never freed and this times out.
            with anyio.fail_after(5):
                await freed.wait()
        finally:
            gc.enable()
        # The ref still answers after its cell let go of it.
        assert not ref.is_alive
        await ref.stop()
        with pytest.raises(ActorStopped):
            await ref.tell("late")
