"""Child process for the SIGKILL test of an agent loop: runs the agent against the fake model
server whose URLs the parent passes in, logging each tool call.

python agent_crash_child.py DB LOG OPENAI_BASE_URL  -> prints the execution id, runs until killed
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.ir import compile_yaml_text

AGENT = """
workflow: {id: trip, version: "1"}
nodes:
  work:
    type: agent
    model: gpt-4o-mini
    prompt: "{{ state.question }}"
    tools: [weather]
    output_key: answer
    next: end
"""


def make_weather(log: str) -> Any:
    @tool
    async def weather(city: str) -> str:
        """Current weather in a city."""
        with open(log, "a") as f:
            f.write(f"weather {city}\n")
        return f"sunny in {city}"

    return weather


def make_runtime(db: str, log: str, base_url: str) -> Runtime:
    env = {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": base_url}
    return Runtime(f"sqlite:///{db}", tools=[make_weather(log)], node_kinds=AgentKinds(env))


async def main(db: str, log: str, base_url: str) -> None:
    async with make_runtime(db, log, base_url) as rt:
        run = await rt.start(rt.register(compile_yaml_text(AGENT, "trip.yaml")), {"question": "?"})
        print(run.id, flush=True)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
