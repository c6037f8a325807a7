"""Property: under restarts, every non-failing told message is processed once, in order."""

from __future__ import annotations

import anyio
from actor_fakes import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.actors import Actor, ActorSystem, RestartStrategy

messages = st.lists(st.booleans(), max_size=60)


class Flaky(Actor):
    def __init__(self, processed: list[int], attempted: list[int]) -> None:
        self.processed = processed
        self.attempted = attempted

    async def on_receive(self, message: object) -> object:
        if message == "done":
            return None
        assert isinstance(message, tuple)
        seq, fails = message
        self.attempted.append(seq)
        if fails:
            raise RuntimeError(f"message {seq} fails")
        self.processed.append(seq)
        return None


@settings(max_examples=60, deadline=None)
@given(batch=messages, mailbox_size=st.integers(min_value=1, max_value=8))
def test_told_messages_are_processed_exactly_once_in_order_under_restarts(
    batch: list[bool], mailbox_size: int
) -> None:
    processed: list[int] = []
    attempted: list[int] = []
    clock = FakeClock()
    strategy = RestartStrategy(max_restarts=len(batch) + 1, backoff_initial_secs=0.001)

    async def run() -> None:
        async with ActorSystem(clock=clock) as system:
            ref = await system.spawn(
                lambda: Flaky(processed, attempted),
                name="flaky",
                mailbox_size=mailbox_size,
                strategy=strategy,
            )
            for seq, fails in enumerate(batch):
                await ref.tell((seq, fails))
            await ref.ask("done")

    anyio.run(run, backend="asyncio")
    failing = sum(batch)
    assert processed == [seq for seq, fails in enumerate(batch) if not fails]
    assert attempted == list(range(len(batch)))  # failing messages are not retried either
    assert len(clock.sleeps) == failing
