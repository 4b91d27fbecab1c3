"""A farm that is not there: the SDK's Unavailable names the URL it called."""

import socket
from collections.abc import Iterator

import pytest

import browserfarm
from browserfarm.transport import TransportName


@pytest.fixture
def closed_url() -> Iterator[str]:
    """A loopback URL whose port refuses connections (bound, never listening)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_farm_that_refuses_connections_is_unavailable_naming_its_url(
    closed_url: str, transport: TransportName
) -> None:
    with (
        browserfarm.Client(closed_url, "bf_key", transport=transport, max_attempts=1) as farm,
        pytest.raises(browserfarm.Unavailable) as raised,
    ):
        farm.get("tsk_0000000000000000")
    assert raised.value.message.startswith(f"the farm at {closed_url}: ")
