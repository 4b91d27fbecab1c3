"""An AsyncClient closed under its calls: they raise RuntimeError, not CancelledError."""

import asyncio

import pytest

import browserfarm
from browserfarm.transport import TransportName


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_calls_under_way_when_the_client_closes_raise_runtime_error(
    silent_listener: str, transport: TransportName
) -> None:
    async def closed_under_them() -> list[BaseException | browserfarm.Task]:
        farm = browserfarm.AsyncClient(silent_listener, "bf_key", transport=transport)
        under_way = [asyncio.ensure_future(farm.get("tsk_1")) for _ in range(2)]
        # A call still under way when the farm gets the connection: it never answers.
        await asyncio.sleep(0.5)
        await farm.close()
        return await asyncio.gather(*under_way, return_exceptions=True)

    ended = asyncio.run(closed_under_them())
    assert [type(each) for each in ended] == [RuntimeError, RuntimeError], ended
    assert {str(each) for each in ended} == {"the client was closed while this call was under way"}


def test_a_call_cancelled_by_its_caller_is_cancelled_though_the_client_closes(
    silent_listener: str,
) -> None:
    async def cancelled_then_closed() -> bool:
        farm = browserfarm.AsyncClient(silent_listener, "bf_key")
        call = asyncio.ensure_future(farm.get("tsk_1"))
        await asyncio.sleep(0.5)
        call.cancel()
        await farm.close()
        await asyncio.gather(call, return_exceptions=True)
        return call.cancelled()

    assert asyncio.run(cancelled_then_closed())
