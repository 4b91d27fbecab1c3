"""A farm that does not answer: the console's refusal says so, with its time limit."""

import socket
from collections.abc import Iterator

import grpc
import pytest

from farm.auth.v1 import auth_pb2
from farm_console.farm import Farm, FarmError


@pytest.fixture
def silent_edge() -> Iterator[str]:
    """The address of a TCP listener that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_a_call_past_the_time_limit_names_it_and_its_setting(silent_edge: str) -> None:
    # gRPC's own words were all the page said: "DEADLINE_EXCEEDED Deadline Exceeded".
    farm = Farm(silent_edge, None, timeout=0.3)
    try:
        with pytest.raises(FarmError) as refused:
            await farm.call("bf_key", farm.auth.WhoAmI, auth_pb2.WhoAmIRequest())
    finally:
        await farm.close()

    assert refused.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert refused.value.message.startswith("the farm did not answer within 0.3 s")
    assert "FARM_CONSOLE_CALL_TIMEOUT_SECONDS" in refused.value.message
