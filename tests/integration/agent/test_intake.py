"""The agent's intake against a real nats-server: events, acks, priorities, cancels, drain."""

import hashlib
import logging
import uuid

import pytest
from google.protobuf import json_format
from nats.aio.client import Client
from nats.js import JetStreamContext

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.queue import Priority, cancel_subject, task_subject
from farm_core.shared_buckets import cancel_bucket
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import (
    CANCELLED,
    FAILED,
    NORMAL,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Events,
    StartIntake,
    content_of,
    grant_of,
    is_zero,
    publish,
    queued_tasks,
)
from tests.integration.agent.fakes import FakeUploader
from tests.pages import Site

pytestmark = pytest.mark.integration

HIGH, LOW = Priority.HIGH, Priority.LOW


async def test_a_task_reports_running_then_succeeded_and_is_acked(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="farm_agent.work")
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
    # The WorkItem's grant goes with the upload and with every event.
    assert uploader.grants == [grant_of(task_id)]
    assert {event.grant for event in events.of(task_id)} == {grant_of(task_id)}
    assert ref.sha256 == hashlib.sha256(artifact.data).hexdigest()
    assert ref.content_type == "text/html; charset=utf-8"
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")
    # The agent's log at INFO follows the task, naming the host but not the URL's path.
    logged = [record.getMessage() for record in caplog.records if task_id in record.getMessage()]
    assert logged[0] == f"task {task_id} attempt 1 running on 127.0.0.1"
    assert logged[-1].startswith(f"task {task_id} succeeded in ")
    assert logged[-1].endswith(" s with 1 artifact(s)")


async def test_a_failing_task_reports_failed_with_its_code_and_is_acked(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
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
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_extract_results_travel_as_json(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
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


async def hold_the_only_slot(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> tuple[str, str]:
    """Starts an intake of one task at a time, busy with a task its gate page holds open.

    The gate's name and the holding task's id.
    """
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    slow = await publish(js, content_of(site, f"/gate/{gate}"), NORMAL)
    await start_intake(concurrency=1, poll_seconds=60)
    await assert_eventually(lambda: slow in events.started(), message="slow task not started")
    return gate, slow


async def test_high_tasks_queued_behind_a_running_task_go_before_earlier_low_ones(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    gate, slow = await hold_the_only_slot(js, start_intake, events, site)
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
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    gate, _ = await hold_the_only_slot(js, start_intake, events, site)
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


async def publish_marked(js: JetStreamContext, site: Site, mark: bytes) -> str:
    """A task marked ended in the cancel bucket (`mark`: its reason), then published."""
    task_id = f"task-{uuid.uuid4().hex[:12]}"
    bucket = await cancel_bucket(js)
    await bucket.put(task_id, mark)
    item = queue_pb2.WorkItem(task_id=task_id, tenant="acme", spec=content_of(site))
    await js.publish(
        task_subject("", NORMAL), item.SerializeToString(), headers={"Nats-Msg-Id": task_id}
    )
    return task_id


async def test_a_task_in_the_cancel_bucket_is_skipped(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
) -> None:
    task_id = await publish_marked(js, site, b"")
    await start_intake()

    final = await events.final(task_id)

    assert final.status == CANCELLED
    assert events.statuses(task_id) == [CANCELLED]
    assert uploader.uploads == []
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_a_task_marked_failed_elsewhere_is_acked_unrun_and_unreported(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
) -> None:
    # Redelivered after the scheduler failed it (another delivery found its attempts used up).
    task_id = await publish_marked(js, site, b"FAILED: ATTEMPTS_EXHAUSTED")
    await start_intake()

    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")
    assert events.statuses(task_id) == []
    assert uploader.uploads == []


async def test_a_cancel_notice_stops_a_running_task(
    js: JetStreamContext,
    nc: Client,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
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
    # The attempt leaves the running set as it settles, just after its final event.
    await assert_eventually(lambda: intake.running_tasks == [], message="task still running")
    assert uploader.uploads == []
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")
    site.release(gate)


async def test_drain_hands_a_running_task_back_and_it_runs_again(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
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
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
) -> None:
    uploader.failures_left = 1
    await start_intake(retry_base_seconds=0.2)
    task_id = await publish(js, content_of(site))

    final = await events.final(task_id)

    assert final.status == SUCCEEDED
    assert [(event.status, event.attempt) for event in events.of(task_id)] == [
        (RUNNING, 1),
        (QUEUED, 1),
        (RUNNING, 2),
        (SUCCEEDED, 2),
    ]
    retried = events.of(task_id)[1]
    assert (retried.error.code, retried.error.retryable) == ("UPLOAD_FAILED", True)
    assert len(uploader.uploads) == 1


async def test_an_upload_failing_on_the_last_attempt_fails_the_task(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
) -> None:
    uploader.failures_left = 1
    await start_intake()
    spec = content_of(site)
    spec.max_attempts = 1
    task_id = await publish(js, spec)

    final = await events.final(task_id)

    assert final.status == FAILED
    assert final.error.code == "UPLOAD_FAILED"
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")
