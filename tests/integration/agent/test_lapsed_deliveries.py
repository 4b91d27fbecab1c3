"""A delivery that JetStream redelivered meanwhile is left to the newest delivery to settle.

nats-server takes an ack of an earlier delivery as the message's: a cut-off agent's
ack after the task was redelivered would settle the message that the running retry
holds, and the retry's nak (or death) would then bring nothing. The agent's real
Delivery, on a real message of a real nats-server with a short ack wait, is cut off
from NATS past the ack wait — its event loop blocked, or nats-server stopped — while
a second subscriber takes delivery 2 and naks it: delivery 3 still comes.

An agent's intake whose attempt lapsed and reported its end (flagged `redelivered`)
holds the task's redelivery, also on itself, until the scheduler's end mark acks it
unrun, however late the mark comes within FARM_AGENT_HOLDER_LOST_SECONDS; with no
mark by then (no scheduler here) it runs the task again, once, and settles it.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import REGISTRY

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.work.delivery import Delivery, DeliveryOutcome
from farm_agent.work.intake import WorkIntake
from farm_agent.work.lapses import lapse_bound
from farm_core import task_ends
from farm_core.shared_buckets import cancel_bucket
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import (
    SUCCEEDED,
    Events,
    SettingsFactory,
    is_zero,
    publish,
    queued_tasks,
    waits,
)
from tests.integration.agent.fakes import FakeSavedState, FakeUploader

ACK_WAIT = 2.0
IN_PROGRESS = 0.5
DURABLE = "work"
# A redelivery is fetched at the intake's next look at its queues, not at a new-task signal.
POLL = 0.2
# A redelivery is due ACK_WAIT after the last ack; the margin is for a loaded machine.
FETCH_TIMEOUT = ACK_WAIT + 8


def lapsed_count() -> float:
    """agent_tasks_total{status="lapsed"}."""
    labels = {"status": DeliveryOutcome.LAPSED.value}
    return REGISTRY.get_sample_value("agent_tasks_total", labels) or 0.0


async def one_message_stream(js: JetStreamContext) -> str:
    """A stream of its own holding one message, with a pull consumer of a short ack wait."""
    stream = f"LAPSE_{uuid.uuid4().hex[:8]}"
    subject = f"lapse.{stream}"
    await js.add_stream(name=stream, subjects=[subject])
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT,
            max_deliver=-1,
        ),
    )
    await js.publish(subject, b"a task")
    return stream


async def fetch_one(nc: Client, stream: str) -> Msg:
    """The consumer's next delivery, taken through `nc`."""
    subscription = await nc.jetstream().pull_subscribe_bind(DURABLE, stream)
    [message] = await subscription.fetch(1, timeout=FETCH_TIMEOUT)
    await subscription.unsubscribe()
    return message


def agents_delivery(message: Msg, client: Client) -> Delivery:
    """The delivery as the agent wraps it, with the consumer's ack wait."""
    return Delivery(
        message,
        "task-lapsed",
        lambda _subject, _delay: None,
        connected=lambda: client.is_connected,
        lapse_after_seconds=lapse_bound(ACK_WAIT, IN_PROGRESS),
        attempt_of=lambda: 1,
    )


async def assert_the_retry_naks_and_delivery_3_comes(
    cut_off: Delivery, cut_off_client: Client, other: Client, stream: str
) -> None:
    """Delivery 2 goes to the other agent; the cut-off one answers; the other's nak counts."""
    second = await fetch_one(other, stream)
    assert second.metadata.num_delivered == 2
    before = lapsed_count()

    # The cut-off attempt reports its end and would ack: the retry holds the message now.
    await cut_off.ack(DeliveryOutcome.SUCCEEDED)
    await cut_off_client.flush()
    # The retry fails retryably.
    await second.nak()

    third = await fetch_one(other, stream)
    assert third.metadata.num_delivered == 3
    assert lapsed_count() == before + 1


@pytest.fixture
async def clients(nats_server: NatsServer) -> AsyncIterator[tuple[Client, Client]]:
    """The cut-off agent's connection and the other agent's."""
    cut_off = await nats.connect(nats_server.url)
    other = await nats.connect(nats_server.url)
    try:
        yield cut_off, other
    finally:
        await other.close()
        await cut_off.close()


async def test_an_agent_whose_loop_was_blocked_past_the_ack_wait_leaves_the_message_to_the_retry(
    clients: tuple[Client, Client],
) -> None:
    cut_off_client, other = clients
    stream = await one_message_stream(cut_off_client.jetstream())
    first = await fetch_one(cut_off_client, stream)
    cut_off = agents_delivery(first, cut_off_client)

    async with cut_off.kept_in_progress(IN_PROGRESS):
        # A blocked loop (or a paused process): no in-progress ack goes meanwhile.
        time.sleep(ACK_WAIT + 1)  # noqa: ASYNC251 - the blocked loop is the point

    await assert_the_retry_naks_and_delivery_3_comes(cut_off, cut_off_client, other, stream)


async def test_an_agent_cut_off_from_nats_past_the_ack_wait_leaves_the_message_to_the_retry(
    fresh_nats_server: NatsServer,
) -> None:
    reconnecting = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.2}
    cut_off_client = await nats.connect(fresh_nats_server.url, **reconnecting)
    other = await nats.connect(fresh_nats_server.url, **reconnecting)
    try:
        stream = await one_message_stream(cut_off_client.jetstream())
        first = await fetch_one(cut_off_client, stream)
        cut_off = agents_delivery(first, cut_off_client)

        async with cut_off.kept_in_progress(IN_PROGRESS):
            fresh_nats_server.process.stop(timeout=5)
            await assert_eventually(
                lambda: not cut_off_client.is_connected, message="the client saw no disconnect"
            )
            # In-progress acks go on meanwhile, into nats-py's reconnect buffer.
            await asyncio.sleep(ACK_WAIT + 1)
            fresh_nats_server.process.start()
            await assert_eventually(
                lambda: cut_off_client.is_connected and other.is_connected,
                within=30,
                message="the clients did not reconnect",
            )

        await assert_the_retry_naks_and_delivery_3_comes(cut_off, cut_off_client, other, stream)
    finally:
        await other.close()
        await cut_off_client.close()


class FirstRunBlocksTheLoop:
    """A runner whose first run blocks the agent's event loop past the ack wait."""

    def __init__(self) -> None:
        self.runs = 0

    async def run(
        self, spec: tasks_pb2.TaskSpec, profile_state: bytes = b"", tenant: str = ""
    ) -> Capture:
        self.runs += 1
        if self.runs == 1:
            time.sleep(ACK_WAIT + 1)  # noqa: ASYNC251 - the blocked loop is the point
        return Capture(result=tasks_pb2.TaskResult(final_url=spec.url))


async def test_a_task_whose_only_delivery_lapsed_runs_again_and_is_then_settled(
    nats_server: NatsServer,
    js: JetStreamContext,
    events: Events,
    make_settings: SettingsFactory,
    uploader: FakeUploader,
    saved: FakeSavedState,
) -> None:
    settings = make_settings(
        NATS_URL=nats_server.url,
        id="agent-lapsed",
        concurrency=1,
        ack_wait_seconds=ACK_WAIT,
        in_progress_seconds=IN_PROGRESS,
        poll_seconds=POLL,
        # A held redelivery looks again for the mark after a heartbeat interval.
        heartbeat_seconds=0.5,
        # No scheduler marks the task ended: its redelivery waits this long for the mark.
        holder_lost_seconds=1,
    )
    runner = FirstRunBlocksTheLoop()
    intake = WorkIntake(settings, runner, uploader, saved=saved)
    await intake.start()
    before = lapsed_count()
    try:
        task_id = await publish(js, tasks_pb2.TaskSpec(url="http://127.0.0.1:9/page"))

        # Attempt 1 reports its success but withholds its ack: the message comes again.
        await assert_eventually(
            lambda: [e.attempt for e in events.of(task_id) if e.status == SUCCEEDED] == [1, 2],
            within=FETCH_TIMEOUT + 10,
            message="the lapsed delivery's task did not run again",
        )
        # Attempt 2's ack settles the message: no third run.
        await assert_eventually(lambda: is_zero(queued_tasks(js)), message="the task stayed")
    finally:
        await intake.close()
    assert runner.runs == 2
    assert lapsed_count() == before + 1


async def test_a_lapsed_attempts_redelivery_waits_for_the_late_end_mark_and_is_acked_unrun(
    nats_server: NatsServer,
    js: JetStreamContext,
    events: Events,
    make_settings: SettingsFactory,
    uploader: FakeUploader,
    saved: FakeSavedState,
) -> None:
    """The scheduler (here the test) writes the end mark seconds after the flagged event.

    The redelivery comes back to the agent whose attempt lapsed, after that attempt
    has ended: it must wait for the mark, not run the task a second time.
    """
    settings = make_settings(
        NATS_URL=nats_server.url,
        id="agent-lapsed-held",
        concurrency=1,
        ack_wait_seconds=ACK_WAIT,
        in_progress_seconds=IN_PROGRESS,
        poll_seconds=POLL,
        heartbeat_seconds=0.5,
        holder_lost_seconds=600,
    )
    runner = FirstRunBlocksTheLoop()
    intake = WorkIntake(settings, runner, uploader, saved=saved)
    await intake.start()
    held_before = waits("held_elsewhere")
    try:
        task_id = await publish(js, tasks_pb2.TaskSpec(url="http://127.0.0.1:9/page"))
        final = await events.final(task_id, within=FETCH_TIMEOUT)
        assert (final.status, final.redelivered) == (SUCCEEDED, True), final

        # Held again and again, past the heartbeat interval a plain end is listed for.
        await assert_eventually(
            lambda: waits("held_elsewhere") >= held_before + 3,
            within=FETCH_TIMEOUT + 10,
            message=lambda: f"no redelivery waited for the end mark: {runner.runs} run(s)",
        )
        ended = await cancel_bucket(js)
        await ended.put(task_id, task_ends.mark(task_ends.SUCCEEDED))
        await assert_eventually(
            lambda: is_zero(queued_tasks(js)), within=30, message="the redelivery stayed"
        )
    finally:
        await intake.close()
    assert runner.runs == 1
    assert [event.status for event in events.of(task_id)].count(SUCCEEDED) == 1
