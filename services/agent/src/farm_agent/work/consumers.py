"""The agent's end of one (region, priority) task queue: its durable consumer, one pull at a time.

Each pull is one request to the consumer's NEXT subject: `no_wait` when only the
poll suggests work (answered at once, so an empty queue never holds up one with
work), else with an `expires` that the server always answers (a message or a
timeout status) before the request gives up, so no pull request outlives its pull
and no task is handed to a pull that has stopped listening. No pull is asked for
while the connection is down: nats-py would buffer the request and send it once
reconnected, after its pull had given up.
"""

import json
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from farm_core.queue import TASK_STREAM, Priority, consumer_name, next_task_subject, task_subject

PROBE_REQUEST = json.dumps({"batch": 1, "no_wait": True}).encode()
REPLY_MARGIN_SECONDS = 2.0
"""Beyond a pull's expiry, how long to wait for the server's answer before giving up."""
UNLIMITED_ACK_PENDING = -1
"""A task handed back to wait (its tenant or host busy) stays pending until its delay ends;
under the server's default of 1,000 pending, one tenant's held backlog of 1,000 would stop
the queue from handing any agent a new task, another tenant's included."""


@dataclass(eq=False)
class QueueConsumer:
    """One (region, priority) consumer this agent pulls from, and whether it may hold work."""

    region: str
    priority: Priority
    nc: Client
    # Where the server answers this queue's pull requests: one answer per request.
    inbox: Subscription
    maybe_has_work: bool = True
    # Flagged only by the periodic poll (or at start), not by a doorbell or a known
    # backlog: then a no_wait probe, as a waiting pull on an empty queue would hold
    # up queues with work.
    probe_only: bool = True
    rings: int = 0

    @classmethod
    async def bind(
        cls,
        nc: Client,
        js: JetStreamContext,
        region: str,
        priority: Priority,
        ack_wait_seconds: float,
    ) -> "QueueConsumer":
        """Creates the durable consumer (or finds it) and an inbox for its answers."""
        name = consumer_name(region, priority)
        await js.add_consumer(
            TASK_STREAM,
            ConsumerConfig(
                name=name,
                durable_name=name,
                filter_subject=task_subject(region, priority),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait_seconds,
                max_deliver=-1,
                max_ack_pending=UNLIMITED_ACK_PENDING,
            ),
        )
        return cls(region, priority, nc, await nc.subscribe(nc.new_inbox()))

    @property
    def name(self) -> str:
        """The durable consumer's name."""
        return consumer_name(self.region, self.priority)

    @property
    def subject(self) -> str:
        """The subject this queue's tasks are published on."""
        return task_subject(self.region, self.priority)

    async def pull(self, wait_seconds: float) -> Msg | None:
        """The next message: at once for a probe, else within `wait_seconds`; None: none now.

        Raises nats.errors.Error (ConnectionReconnectingError while the connection is down).
        """
        if self.probe_only:
            request, wait = PROBE_REQUEST, 0.0
        else:
            wait = wait_seconds
            request = json.dumps({"batch": 1, "expires": int(wait * 1_000_000_000)}).encode()
        if not self.nc.is_connected:
            # A buffered request would be answered after this pull gave up: a task
            # handed to nobody, redelivered only after the ack wait, as one more attempt.
            raise nats.errors.ConnectionReconnectingError
        next_subject = next_task_subject(self.region, self.priority)
        await self.nc.publish(next_subject, request, reply=self.inbox.subject)
        reply = await self.inbox.next_msg(timeout=wait + REPLY_MARGIN_SECONDS)
        # A status (404 no messages, 408 request expired) instead of a task: none now.
        return None if JetStreamContext.is_status_msg(reply) else reply
