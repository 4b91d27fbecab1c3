"""`farm_nats_connected`: a process's NATS connection, as Prometheus sees it, through an outage."""

import pytest
from prometheus_client import REGISTRY

from farm_core.nats_access import NatsAccess
from farm_core.queue import connect
from tests.conftest import NatsServer
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

NAME = "farm-test-connected"


def connected() -> float | None:
    """The gauge of the test's connection (None: never set)."""
    return REGISTRY.get_sample_value("farm_nats_connected", {"connection": NAME})


async def test_the_connection_gauge_drops_while_nats_is_down_and_rises_when_it_is_back(
    fresh_nats_server: NatsServer,
) -> None:
    client = await connect(NatsAccess(fresh_nats_server.url), NAME)
    try:
        assert connected() == 1
        fresh_nats_server.process.stop(timeout=5)
        # An operator's alert reads this: the process runs, its NATS does not.
        await assert_eventually(lambda: connected() == 0, message="the gauge stayed 1")
        fresh_nats_server.process.start()
        await assert_eventually(lambda: connected() == 1, within=30, message="no reconnect")
    finally:
        await client.close()
