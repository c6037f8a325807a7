"""Pydantic AI on Tether: ``TetherAgent(agent)`` runs an agent's loop as a durable workflow.

Needs the extra: ``pip install "tether[pydantic-ai]"`` (``import tether`` does not load it).
See :mod:`tether.integrations.pydantic_ai.agent`.

Example::

    from pydantic_ai import Agent
    from tether import Runtime
    from tether.integrations.pydantic_ai import TetherAgent

    agent = TetherAgent(Agent("openai:gpt-4o", name="support"))
    async with Runtime("sqlite:///tether.db", workflows=[agent.workflow], tools=agent.steps) as rt:
        print((await rt.run(agent.workflow, {"prompt": "hello"}))["output"])
"""

from tether.integrations.pydantic_ai.agent import TetherAgent

__all__ = ["TetherAgent"]
