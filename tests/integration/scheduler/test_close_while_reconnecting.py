"""A scheduler closed while its NATS connection is being made again closes cleanly."""

import pytest

from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.conftest import StartScheduler

pytestmark = pytest.mark.integration


async def test_scheduler_closed_while_nats_reconnects_closes_without_an_error(
    fresh_nats_server: NatsServer, start_scheduler: StartScheduler
) -> None:
    scheduler = await start_scheduler(NATS_URL=fresh_nats_server.url)
    publisher = scheduler.service.publisher
    assert publisher is not None
    # The real nats-server, stopped by its PID: nats-py reconnects for ever.
    fresh_nats_server.process.stop(timeout=10)
    await assert_eventually(lambda: not publisher.connected(), within=10)

    # Its watches stop meanwhile: nats-py buffers their unsubscribes for the reconnect
    # that the close gives up (it wrote them to the lost socket: uvloop's RuntimeError).
    await scheduler.service.close()
    await scheduler.service.close()  # and again, as the fixture's stop does
