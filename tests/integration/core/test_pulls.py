"""A pull loop hands each message on as soon as JetStream stores it, and takes a backlog in batches.

On a quiet farm the scheduler applied an agent's lone SUCCEEDED event up to its
fetch's 5 s wait late: nats-py's fetch(64), its request answered by a message,
waited for 63 more. It happened whenever a timed-out fetch had left its request
waiting on the server, which the first test stages by hand.
"""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from farm_core.pulls import Puller
from tests.conftest import NatsServer

pytestmark = pytest.mark.integration

WAIT_SECONDS = 10.0
DURABLE = "puller"


@dataclass(frozen=True)
class Consumer:
    """A stream of the test's own, its durable consumer and a pull subscription to it."""

    client: Client
    js: JetStreamContext
    stream: str
    subject: str
    subscription: JetStreamContext.PullSubscription


@pytest.fixture
async def consumer(nats_server: NatsServer) -> AsyncIterator[Consumer]:
    client = await nats.connect(nats_server.url)
    js = client.jetstream()
    token = secrets.token_hex(4)
    stream, subject = f"PULLS_{token}", f"pulls.{token}"
    await js.add_stream(name=stream, subjects=[f"{subject}.>"])
    await js.add_consumer(
        stream, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT)
    )
    subscription = await js.pull_subscribe_bind(durable=DURABLE, stream=stream)
    try:
        yield Consumer(client, js, stream, subject, subscription)
    finally:
        await js.delete_stream(stream)
        await client.close()


def puller(consumer: Consumer, most: int = 64) -> Puller:
    return Puller(consumer.subscription, most, WAIT_SECONDS, "test messages", 1.0)


async def test_a_message_is_handed_on_at_once_though_a_request_was_left_waiting(
    consumer: Consumer,
) -> None:
    # What a fetch that timed out before the server answered leaves behind: its
    # request for a batch, still waiting, answering to the subscription's inbox.
    left_waiting = {"batch": 64, "expires": int(3 * WAIT_SECONDS * 1e9)}
    await consumer.client.publish(
        f"$JS.API.CONSUMER.MSG.NEXT.{consumer.stream}.{DURABLE}",
        json.dumps(left_waiting).encode(),
        reply=consumer.subscription._deliver,  # the inbox nats-py made
    )
    await consumer.client.flush()
    fetching = asyncio.create_task(puller(consumer).fetch())
    await asyncio.sleep(0.2)  # the fetch's own request is on the server too
    await consumer.js.publish(f"{consumer.subject}.a", b"a")

    done, _ = await asyncio.wait({fetching}, timeout=WAIT_SECONDS / 2)

    assert done, "the stored message was held back until the fetch's wait ran out"
    assert [message.data for message in fetching.result()] == [b"a"]


async def test_a_backlog_is_fetched_in_batches_of_what_is_pending(consumer: Consumer) -> None:
    for index in range(7):
        await consumer.js.publish(f"{consumer.subject}.{index}", str(index).encode())
    pulls = puller(consumer, most=4)

    sizes = []
    received: list[bytes] = []
    while len(received) < 7:
        asked = pulls.next_batch
        messages = await pulls.fetch()
        sizes.append((asked, len(messages)))
        received += [message.data for message in messages]
        for message in messages:
            await message.ack()

    # Idle, one at a time; then what the last message said was pending, at most 4.
    assert sizes == [(1, 1), (4, 4), (2, 2)]
    assert received == [str(index).encode() for index in range(7)]
    assert pulls.next_batch == 1
