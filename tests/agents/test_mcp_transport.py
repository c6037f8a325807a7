"""The stdio transport's watch on the server's end of the connection."""

from __future__ import annotations

import anyio
import pytest
from mcp.shared.message import SessionMessage

from tether.agents.mcp.transport import _WatchedRead

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_end_of_a_servers_output_is_reported_once_read() -> None:
    # A server that exits closes its stdout: the session learns it before the next call.
    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](1)
    ended: list[str] = []
    watched = _WatchedRead(receive, lambda: ended.append("ended"))
    item = ValueError("a line the server wrote that was not JSON-RPC")
    await send.send(item)
    await send.aclose()
    assert [item async for item in watched] == [item]
    assert ended == ["ended"]
