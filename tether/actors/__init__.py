"""The actor kernel: actors, refs, bounded mailboxes, one-for-one supervision, orderly stops.

It knows nothing of journals, SQLite or ZeroMQ; embed it in any anyio (asyncio backend) app.

Example::

    from tether.actors import Actor, ActorSystem

    class Echo(Actor):
        async def on_receive(self, message: object) -> object:
            return message

    async with ActorSystem() as system:
        echo = await system.spawn(Echo, name="echo")
        assert await echo.ask("hi") == "hi"
"""

from ._actor import Actor, ActorContext
from ._errors import ActorStopped, AskTimeout, MailboxFull
from ._ref import ActorRef
from ._supervision import EscalateStrategy, RestartStrategy, StopStrategy, SupervisionStrategy
from ._system import ActorSystem

__all__ = [
    "Actor",
    "ActorContext",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "EscalateStrategy",
    "MailboxFull",
    "RestartStrategy",
    "StopStrategy",
    "SupervisionStrategy",
]
