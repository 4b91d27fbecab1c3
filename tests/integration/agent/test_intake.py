"""The agent's intake against a real nats-server: events, acks, priorities, cancels, drain."""

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from google.protobuf import json_format
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.actions import CapturedArtifact
from farm_agent.errors import ErrorCode, TaskFailure
from farm_agent.intake import WorkIntake, consumer_name
from farm_agent.pool import BrowserPool
from farm_agent.priorities import PRECEDENCE
from farm_agent.runner import TaskRunner
from farm_core.queue import (
    ANY_REGION,
    TASK_STREAM,
    cancel_bucket,
    cancel_subject,
    ensure_streams,
    task_subject,
)
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
CANCELLED = tasks_pb2.TASK_STATUS_CANCELLED
FINAL = {SUCCEEDED, FAILED, CANCELLED}
HIGH, NORMAL, LOW = tasks_pb2.PRIORITY_HIGH, tasks_pb2.PRIORITY_NORMAL, tasks_pb2.PRIORITY_LOW


class FakeUploader:
    """Stands in for the storage service: keeps uploads, can fail the next few."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, str, CapturedArtifact]] = []
        self.failures_left = 0

    async def upload(
        self, tenant: str, task_id: str, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        if self.failures_left:
            self.failures_left -= 1
            raise TaskFailure(ErrorCode.UPLOAD_FAILED, "storage is down (test)")
        self.uploads.append((tenant, task_id, artifact))
        return tasks_pb2.ArtifactRef(
            id=f"artifact-{len(self.uploads)}",
            kind=artifact.kind,
            content_type=artifact.content_type,
            size_bytes=len(artifact.data),
            sha256=hashlib.sha256(artifact.data).hexdigest(),
        )

    async def close(self) -> None:
        pass


class Events:
    """Every AgentEvent published while the test runs, in arrival order."""

    def __init__(self) -> None:
        self.received: list[queue_pb2.AgentEvent] = []

    async def on_message(self, message: Msg) -> None:
        self.received.append(queue_pb2.AgentEvent.FromString(message.data))

    def of(self, task_id: str) -> list[queue_pb2.AgentEvent]:
        return [event for event in self.received if event.task_id == task_id]

    def statuses(self, task_id: str) -> list[int]:
        return [event.status for event in self.of(task_id)]

    def started(self) -> list[str]:
        return [event.task_id for event in self.received if event.status == RUNNING]

    async def final(self, task_id: str, within: float = 20) -> queue_pb2.AgentEvent:
        await assert_eventually(
            lambda: any(status in FINAL for status in self.statuses(task_id)),
            within=within,
            message=f"task {task_id} did not end",
        )
        return next(event for event in self.of(task_id) if event.status in FINAL)


@pytest.fixture
async def nc(nats_server) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.drain()


@pytest.fixture
async def js(nc: Client) -> AsyncIterator[JetStreamContext]:
    """JetStream with the farm's streams, and no agent consumers or tasks left from other tests."""
    context = nc.jetstream()
    await ensure_streams(context)
    await _reset_queue(context)
    yield context
    await _reset_queue(context)


async def _reset_queue(js: JetStreamContext) -> None:
    for priority in PRECEDENCE:
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(TASK_STREAM, consumer_name(ANY_REGION, priority))
    await js.purge_stream(TASK_STREAM)


@pytest.fixture
async def events(nc: Client) -> AsyncIterator[Events]:
    collected = Events()
    subscription = await nc.subscribe("events.tasks.>", cb=collected.on_message)
    yield collected
    await subscription.unsubscribe()


@pytest.fixture
def uploader() -> FakeUploader:
    return FakeUploader()


@pytest.fixture
async def start_intake(
    nats_server, js: JetStreamContext, shared_pool: BrowserPool, make_settings, uploader
) -> AsyncIterator[Callable[..., Awaitable[WorkIntake]]]:
    started: list[WorkIntake] = []

    async def start(**overrides: object) -> WorkIntake:
        settings = make_settings(NATS_URL=nats_server.url, id="agent-under-test", **overrides)
        intake = WorkIntake(settings, TaskRunner(shared_pool, settings), uploader)
        await intake.start()
        started.append(intake)
        return intake

    yield start
    for intake in started:
        await intake.close()


async def publish(
    js: JetStreamContext, spec: tasks_pb2.TaskSpec, priority: int = NORMAL, tenant: str = "acme"
) -> str:
    task_id = f"task-{uuid.uuid4().hex[:12]}"
    item = queue_pb2.WorkItem(task_id=task_id, tenant=tenant, spec=spec)
    await js.publish(
        task_subject("", priority), item.SerializeToString(), headers={"Nats-Msg-Id": task_id}
    )
    return task_id


def content_of(site, path: str = "/page", timeout_ms: int = 20_000) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(
        url=site.url(path), timeout_ms=timeout_ms, content=tasks_pb2.ContentOptions()
    )


async def queued_tasks(js: JetStreamContext) -> int:
    return (await js.stream_info(TASK_STREAM)).state.messages


async def test_a_task_reports_running_then_succeeded_and_is_acked(
    js, start_intake, events: Events, uploader: FakeUploader, site
) -> None:
    await start_intake()
    task_id = await publish(js, content_of(site))

    final = await events.final(task_id)

    assert events.statuses(task_id) == [RUNNING, SUCCEEDED]
    running = events.of(task_id)[0]
    assert (running.agent_id, running.attempt) == ("agent-under-test", 1)
    assert final.attempt == 1
    assert final.result.http_status == 200
    assert final.result.title == "Test page"
    assert "Hello, farm" in final.result.text
    [ref] = final.result.artifacts
    [(tenant, uploaded_task, artifact)] = uploader.uploads
    assert (tenant, uploaded_task, artifact.name) == ("acme", task_id, "content")
    assert ref.sha256 == hashlib.sha256(artifact.data).hexdigest()
    assert ref.content_type == "text/html; charset=utf-8"
    await assert_eventually(lambda: _is_zero(queued_tasks(js)), message="task not acked")


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def test_a_failing_task_reports_failed_with_its_code_and_is_acked(
    js, start_intake, events: Events, site
) -> None:
    await start_intake()
    spec = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        timeout_ms=2000,
        steps=[tasks_pb2.Step(click="#missing")],
        screenshot=tasks_pb2.ScreenshotOptions(),
    )
    task_id = await publish(js, spec)

    final = await events.final(task_id)

    assert final.status == FAILED
    assert final.error.code == "SELECTOR_NOT_FOUND"
    assert final.error.message.startswith("steps[0].click:")
    await assert_eventually(lambda: _is_zero(queued_tasks(js)), message="task not acked")


async def test_extract_results_travel_as_json(js, start_intake, events: Events, site) -> None:
    await start_intake()
    spec = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        extract=tasks_pb2.ExtractOptions(fields={"title": "h1", "fruits": "li[]"}),
    )
    final = await events.final(await publish(js, spec))
    assert json_format.MessageToDict(final.result.json) == {
        "title": "Hello, farm",
        "fruits": ["apple", "pear", "plum"],
    }


async def test_high_tasks_queued_behind_a_running_task_go_before_earlier_low_ones(
    js, start_intake, events: Events, site
) -> None:
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    slow = await publish(js, content_of(site, f"/gate/{gate}"), NORMAL)
    await start_intake(concurrency=1, poll_seconds=60)
    await assert_eventually(lambda: slow in events.started(), message="slow task not started")
    lows = [await publish(js, content_of(site), LOW) for _ in range(2)]
    highs = [await publish(js, content_of(site), HIGH) for _ in range(4)]

    site.release(gate)
    for task_id in [slow, *lows, *highs]:
        assert (await events.final(task_id, within=60)).status == SUCCEEDED

    order = events.started()
    assert order[0] == slow
    after_slow = order[1:]
    # FIFO would start both lows first. Weighted, high goes first; low keeps only its
    # share (one pick in ten), so at most one low comes before the last high.
    last_high = max(after_slow.index(task_id) for task_id in highs)
    assert sum(after_slow.index(task_id) < last_high for task_id in lows) <= 1
    assert after_slow[-1] in lows


async def test_low_tasks_are_served_while_high_tasks_keep_coming(
    js, start_intake, events: Events, site
) -> None:
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    slow = await publish(js, content_of(site, f"/gate/{gate}"), NORMAL)
    await start_intake(concurrency=1, poll_seconds=60)
    await assert_eventually(lambda: slow in events.started(), message="slow task not started")
    low = await publish(js, content_of(site), LOW)
    highs = [await publish(js, content_of(site), HIGH) for _ in range(12)]

    site.release(gate)
    assert (await events.final(low, within=60)).status == SUCCEEDED

    after_slow = events.started()[1:]
    # With weights 6,3,1, low gets one pick in every ten however much high work waits.
    assert after_slow.index(low) < 10
    highs_started = sum(task_id in highs for task_id in after_slow)
    assert highs_started < len(highs), "low only ran once high work had run out"
    for task_id in highs:
        await events.final(task_id, within=60)


async def test_a_task_in_the_cancel_bucket_is_skipped(
    js, start_intake, events: Events, uploader: FakeUploader, site
) -> None:
    task_id = f"task-{uuid.uuid4().hex[:12]}"
    bucket = await cancel_bucket(js)
    await bucket.put(task_id, b"")
    item = queue_pb2.WorkItem(task_id=task_id, tenant="acme", spec=content_of(site))
    await js.publish(
        task_subject("", NORMAL), item.SerializeToString(), headers={"Nats-Msg-Id": task_id}
    )
    await start_intake()

    final = await events.final(task_id)

    assert final.status == CANCELLED
    assert events.statuses(task_id) == [CANCELLED]
    assert uploader.uploads == []
    await assert_eventually(lambda: _is_zero(queued_tasks(js)), message="task not acked")


async def test_a_cancel_notice_stops_a_running_task(
    js, nc: Client, start_intake, events: Events, uploader: FakeUploader, site
) -> None:
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    intake = await start_intake()
    task_id = await publish(js, content_of(site, f"/gate/{gate}"))
    await assert_eventually(lambda: task_id in events.started(), message="task not started")

    notice = queue_pb2.CancelNotice(task_id=task_id)
    await nc.publish(cancel_subject(task_id), notice.SerializeToString())

    final = await events.final(task_id, within=10)
    assert final.status == CANCELLED
    assert events.statuses(task_id) == [RUNNING, CANCELLED]
    assert intake.running_tasks == []
    assert uploader.uploads == []
    await assert_eventually(lambda: _is_zero(queued_tasks(js)), message="task not acked")
    site.release(gate)


async def test_drain_hands_a_running_task_back_and_it_runs_again(
    js, start_intake, events: Events, site
) -> None:
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    first = await start_intake()
    task_id = await publish(js, content_of(site, f"/gate/{gate}"))
    await assert_eventually(lambda: task_id in events.started(), message="task not started")

    await first.drain(grace_seconds=0.2)
    await first.close()
    assert events.statuses(task_id) == [RUNNING]
    assert await queued_tasks(js) == 1

    site.release(gate)
    await start_intake()
    final = await events.final(task_id)
    assert final.status == SUCCEEDED
    assert [event.attempt for event in events.of(task_id)] == [1, 2, 2]


async def test_a_failed_upload_is_retried_as_a_new_attempt(
    js, start_intake, events: Events, uploader: FakeUploader, site
) -> None:
    uploader.failures_left = 1
    await start_intake(retry_delay_seconds=0.2, poll_seconds=0.5)
    task_id = await publish(js, content_of(site))

    final = await events.final(task_id)

    assert final.status == SUCCEEDED
    assert [(event.status, event.attempt) for event in events.of(task_id)] == [
        (RUNNING, 1),
        (RUNNING, 2),
        (SUCCEEDED, 2),
    ]


async def test_an_upload_failing_on_the_last_attempt_fails_the_task(
    js, start_intake, events: Events, uploader: FakeUploader, site
) -> None:
    uploader.failures_left = 1
    await start_intake()
    spec = content_of(site)
    spec.max_attempts = 1
    task_id = await publish(js, spec)

    final = await events.final(task_id)

    assert final.status == FAILED
    assert final.error.code == "UPLOAD_FAILED"
    await assert_eventually(lambda: _is_zero(queued_tasks(js)), message="task not acked")
