"""Progress notifications of a tool call that waits for the farm."""

from typing import Any

import anyio

from farm_mcp_tools.runner import ToolLimits
from tests.unit.mcp.fake_farm import FakeFarm, page_result, texts


async def test_a_call_waiting_for_the_farm_notifies_progress_to_a_client_that_asks(
    client_for: Any, farm: FakeFarm
) -> None:
    heard = anyio.Event()
    notes: list[tuple[float, float | None, str | None]] = []

    async def slow_page(*args: Any, **kwargs: Any) -> Any:
        # The page loads once the client has heard that the call is still waiting.
        await heard.wait()
        return page_result()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        notes.append((done, total, message))
        heard.set()

    farm.run_command = slow_page  # type: ignore[method-assign]
    async with client_for(ToolLimits(call_seconds=20, progress_seconds=0.1)) as client:
        result = await client.call_tool(
            "navigate", {"url": "http://site/slow"}, progress_callback=progress
        )
    assert not result.is_error, texts(result)
    done, total, message = notes[0]
    assert total == 20 and 0 < done < 20
    assert message is not None and "of the tool time limit of 20 s" in message
