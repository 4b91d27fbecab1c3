"""Pulls tried while the agent's NATS connection is down leave no request behind.

nats-py buffers what is published while it reconnects and sends it once it is back.
A pull request so buffered would reach nats-server after its pull had given up, and
the server would hand a task to it: a delivery nobody reads at once, that lingers in
the queue's inbox past the ack wait (then runs beside its redelivery) or is lost
when the agent stops (its redelivery then counts an attempt that never ran). Found
by a chaos trial: after a 30 s NATS outage, a drained agent left 9 tasks behind,
each run later as "attempt 2" with no attempt 1.
"""

import nats
import nats.errors
import pytest
from nats.js.api import StreamConfig

from farm_agent.work.consumers import QueueConsumer
from farm_core.queue import ANY_REGION, TASK_STREAM, Priority, consumer_name, task_subject
from tests.conftest import NatsServer
from tests.helpers import assert_eventually

ACK_WAIT = 30.0
PULLS_WHILE_DOWN = 3


async def test_pulls_tried_while_nats_is_down_are_not_answered_once_it_is_back(
    fresh_nats_server: NatsServer,
) -> None:
    client = await nats.connect(
        fresh_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    try:
        js = client.jetstream()
        subject = task_subject(ANY_REGION, Priority.NORMAL)
        await js.add_stream(StreamConfig(name=TASK_STREAM, subjects=[subject]))
        queue = await QueueConsumer.bind(
            client, js, ANY_REGION, Priority.NORMAL, ack_wait_seconds=ACK_WAIT
        )
        queue.probe_only = False

        fresh_nats_server.process.stop(timeout=5)
        await assert_eventually(lambda: not client.is_connected, message="no disconnect seen")
        for _ in range(PULLS_WHILE_DOWN):
            with pytest.raises((nats.errors.Error, TimeoutError)):
                if await queue.pull(0.2) is None:
                    raise TimeoutError  # none now: as good as a failed pull here
        fresh_nats_server.process.start()
        await assert_eventually(lambda: client.is_connected, within=30, message="no reconnect")

        for n in range(PULLS_WHILE_DOWN + 1):
            await js.publish(subject, f"task {n}".encode())
        taken = None
        while taken is None:
            taken = await queue.pull(2.0)
        await client.flush()

        # Every request before this pull's was answered first (one connection, in
        # order): a buffered one would hold a task that no pull reads.
        info = await js.consumer_info(TASK_STREAM, consumer_name(ANY_REGION, Priority.NORMAL))
        assert info.num_ack_pending == 1, (
            f"{info.num_ack_pending} tasks delivered for the one pull that read one: "
            "pull requests buffered while NATS was down were answered"
        )
        assert queue.inbox.pending_msgs == 0
    finally:
        await client.close()
