"""Child process for the SIGKILL test of a Pydantic AI agent on Tether: the agent's model is
Pydantic AI's OpenAI model pointed at the fake model server whose URL the parent passes in;
each tool call is logged.

python pyai_crash_child.py DB LOG OPENAI_BASE_URL  -> prints the execution id, runs until killed
"""

from __future__ import annotations

import sys

import anyio
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tether import Runtime
from tether.integrations.pydantic_ai import TetherAgent


def make_agent(log: str, base_url: str) -> TetherAgent[None, str]:
    model = OpenAIChatModel(
        "gpt-4o-mini", provider=OpenAIProvider(base_url=base_url, api_key="test-key")
    )
    agent = Agent(model, name="trip", instructions="Answer with the tools.")

    @agent.tool_plain
    async def weather(city: str) -> str:
        """Current weather in a city."""
        with open(log, "a") as f:
            f.write(f"weather {city}\n")
        return f"sunny in {city}"

    return TetherAgent(agent, model_step={"retry": {"max_attempts": 3, "backoff_initial_secs": 0}})


def make_runtime(db: str, agent: TetherAgent[None, str]) -> Runtime:
    return Runtime(f"sqlite:///{db}", workflows=[agent.workflow])


async def main(db: str, log: str, base_url: str) -> None:
    agent = make_agent(log, base_url)
    async with make_runtime(db, agent) as rt:
        run = await rt.start(agent.workflow, {"prompt": "Weather in Oslo and Rome?"})
        print(run.id, flush=True)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
