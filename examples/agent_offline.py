"""An agent run end to end with no network: the fake model server on loopback plays the
provider (OpenAI's wire format), scripted to call a tool and then answer.

    python examples/agent_offline.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio

from tether import Runtime, tool
from tether.agents.kinds import AgentKinds
from tether.testing.fake_models import FakeModelServer, FakeReply, FakeToolCall

HERE = Path(__file__).parent


@tool
async def weather(city: str) -> dict[str, str]:
    """Current weather in a city."""
    return {"city": city, "sky": "sunny", "temp_c": "21"}


async def main() -> None:
    script = [
        FakeReply(tool_calls=(FakeToolCall("weather", {"city": "Lisbon"}),), input_tokens=90),
        FakeReply("Pack light: it is sunny and 21 C in Lisbon.", input_tokens=140),
    ]
    with (
        FakeModelServer(script, api_key="demo-key") as provider,
        tempfile.TemporaryDirectory() as d,
    ):
        kinds = AgentKinds(env=provider.env("demo-key"))
        async with Runtime(f"sqlite:///{d}/agent.db", tools=[weather], node_kinds=kinds) as rt:
            wf = rt.register_yaml(HERE / "agent.yaml")
            run = await rt.start(wf, {"question": "What should I pack for Lisbon?"})
            print("answer:", (await run.result())["answer"])
            for entry in await rt.journal(run.id):
                record = entry.record
                detail = getattr(record, "input", {}).get("call", "")
                facts = getattr(record, "facts", {})
                cost = f" cost ${facts['cost_usd']:.6f}" if facts.get("cost_usd") else ""
                print(f"  {entry.seq:>2} {entry.type:<20} {detail}{cost}")


if __name__ == "__main__":
    anyio.run(main)
