"""A cancelled tool call: the farm runs its command on, and the next call waits for it."""

import asyncio
from typing import Any

from farm_mcp_tools.runner import ToolLimits
from tests.unit.mcp.fake_farm import FakeFarm, page_result, texts


async def test_the_call_after_a_cancelled_one_waits_for_its_command_instead_of_queueing(
    client_for: Any, farm: FakeFarm
) -> None:
    began, page_loads = asyncio.Event(), asyncio.Event()
    sent: list[Any] = []

    async def farm_call(*args: Any, **kwargs: Any) -> Any:
        command = args[1]
        sent.append(command)
        if len(sent) == 1:
            began.set()
            # The farm cannot stop a command it has begun: a cancel does not end this.
            await asyncio.shield(page_loads.wait())
        return page_result()

    farm.run_command = farm_call  # type: ignore[method-assign]
    async with client_for(ToolLimits(call_seconds=2.0)) as client:
        navigate = asyncio.create_task(client.call_tool("navigate", {"url": "http://site/slow"}))
        await began.wait()
        navigate.cancel()
        await asyncio.wait({navigate})
        busy = await client.call_tool("get_content", {})
        page_loads.set()
        after = await client.call_tool("get_content", {})
    assert busy.is_error
    assert "still running the command of an earlier tool call" in texts(busy)
    assert not after.is_error, texts(after)
    # Not sent while the navigate ran: it would have waited behind it at the agent.
    assert len(sent) == 2 and sent[1].HasField("content")
