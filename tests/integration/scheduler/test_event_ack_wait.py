"""FARM_SCHEDULER_EVENT_ACK_WAIT_SECONDS: how long a killed scheduler's fetched events wait."""

import pytest

from farm_core.queue import EVENT_STREAM
from farm_scheduler.events import DURABLE_NAME
from farm_scheduler.sessions.events import DURABLE_NAME as SESSIONS_DURABLE_NAME
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import StartScheduler

pytestmark = pytest.mark.integration


async def test_both_event_consumers_redeliver_after_the_configured_ack_wait(
    queue: Queue, start_scheduler: StartScheduler
) -> None:
    await start_scheduler(event_ack_wait_seconds=2.5)
    for durable in (DURABLE_NAME, SESSIONS_DURABLE_NAME):
        info = await queue.js.consumer_info(EVENT_STREAM, durable)
        assert info.config.ack_wait == 2.5, durable
