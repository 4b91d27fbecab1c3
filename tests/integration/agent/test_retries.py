"""Retries against real pages and nats-server: backoff, bounds, HTTP errors, deadlines, storage."""

import datetime as dt
import uuid

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext

from farm.tasks.v1 import tasks_pb2
from farm_agent.work.uploader import RetryPolicy, StorageUploader
from farm_core.queue import TASK_STREAM
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Events,
    SettingsFactory,
    StartIntake,
    content_of,
    is_zero,
    publish,
    queued_tasks,
)
from tests.integration.agent.fakes import FakeStorage
from tests.pages import Site

pytestmark = pytest.mark.integration

BASE_SECONDS = 0.3
# Delivery after a nak, the fetch and the RUNNING event: well under this on one machine.
PICKUP_SLACK_SECONDS = 0.5
# A /gate/<name> page nobody releases answers after this long (tests/pages.py).
UNCUT_PAGE_SECONDS = 30


def seconds(stamp: Timestamp) -> float:
    return stamp.ToNanoseconds() / 1e9


def failing_on_http_errors(url: str, max_attempts: int = 3) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(
        url=url,
        timeout_ms=10_000,
        content=tasks_pb2.ContentOptions(),
        fail_on_http_error=True,
        max_attempts=max_attempts,
    )


async def test_a_page_that_fails_twice_then_works_succeeds_on_the_third_attempt_after_backoffs(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(retry_base_seconds=BASE_SECONDS, retry_max_seconds=10)
    task_id = await publish(js, failing_on_http_errors(site.url(f"/flaky/{uuid.uuid4().hex}")))

    final = await events.final(task_id, within=30)

    assert final.status == SUCCEEDED
    history = events.of(task_id)
    assert [(event.status, event.attempt) for event in history] == [
        (RUNNING, 1),
        (QUEUED, 1),
        (RUNNING, 2),
        (QUEUED, 2),
        (RUNNING, 3),
        (SUCCEEDED, 3),
    ]
    for failed_attempt in (1, 2):
        queued = history[2 * failed_attempt - 1]
        restarted = history[2 * failed_attempt]
        assert (queued.error.code, queued.error.retryable) == ("HTTP_ERROR", True)
        assert "HTTP 503" in queued.error.message
        backoff = BASE_SECONDS * 2 ** (failed_attempt - 1)
        announced = seconds(queued.retry_time) - seconds(queued.time)
        assert 0.5 * backoff - 0.01 <= announced <= 1.5 * backoff + 0.01
        waited = seconds(restarted.time) - seconds(queued.time)
        assert 0.5 * backoff - 0.01 <= waited <= 1.5 * backoff + PICKUP_SLACK_SECONDS
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_a_task_out_of_attempts_fails_with_the_last_error_and_is_acked(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(retry_base_seconds=0.05)
    task_id = await publish(js, failing_on_http_errors(site.url("/status/503"), max_attempts=2))

    final = await events.final(task_id)

    assert [(event.status, event.attempt) for event in events.of(task_id)] == [
        (RUNNING, 1),
        (QUEUED, 1),
        (RUNNING, 2),
        (FAILED, 2),
    ]
    assert (final.error.code, final.error.retryable) == ("HTTP_ERROR", True)
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_a_404_with_fail_on_http_error_fails_at_once(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(retry_base_seconds=0.05)
    task_id = await publish(js, failing_on_http_errors(site.url("/missing")))

    final = await events.final(task_id)

    assert events.statuses(task_id) == [RUNNING, FAILED]
    assert (final.error.code, final.error.retryable) == ("HTTP_ERROR", False)
    assert "HTTP 404" in final.error.message


async def test_an_error_page_is_a_page_without_fail_on_http_error(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake()
    final = await events.final(await publish(js, content_of(site, "/status/503")))
    assert (final.status, final.result.http_status) == (SUCCEEDED, 503)


def deadline_in(seconds_from_now: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now))
    return stamp


async def test_a_task_past_its_deadline_is_not_started(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    spec = content_of(site)
    spec.deadline.CopyFrom(deadline_in(-1))
    task_id = await publish(js, spec)
    await start_intake()

    final = await events.final(task_id)

    assert events.statuses(task_id) == [FAILED]
    assert (final.error.code, final.error.retryable) == ("DEADLINE_EXCEEDED", False)
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_the_deadline_cuts_an_attempt_short_and_stops_retries(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(retry_base_seconds=0.05)
    # The page answers only after UNCUT_PAGE_SECONDS, well within the task's own 60 s:
    # un-cut, the attempt would load it and succeed. The deadline comes long before.
    gate = f"deadline-{uuid.uuid4().hex[:8]}"
    spec = content_of(site, f"/gate/{gate}", timeout_ms=60_000)
    spec.deadline.CopyFrom(deadline_in(4))
    task_id = await publish(js, spec)
    try:
        final = await events.final(task_id, within=UNCUT_PAGE_SECONDS + 30)
    finally:
        site.release(gate)

    assert events.statuses(task_id) == [RUNNING, FAILED], final
    assert final.error.code == "DEADLINE_EXCEEDED", final
    assert "TIMEOUT" in final.error.message


async def test_a_retry_the_deadline_leaves_no_time_for_ends_the_task_at_once_with_its_error(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(retry_base_seconds=60, retry_max_seconds=60)
    spec = failing_on_http_errors(site.url("/status/503"))
    spec.deadline.CopyFrom(deadline_in(20))

    final = await events.final(await publish(js, spec))

    assert [event.status for event in events.of(final.task_id)] == [RUNNING, FAILED]
    assert (final.error.code, final.error.retryable) == ("HTTP_ERROR", True)
    assert "HTTP 503" in final.error.message
    assert "; not retried: the retry after " in final.error.message
    assert " after the deadline " in final.error.message
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_a_host_whose_name_does_not_exist_fails_at_once_without_a_retry(
    js: JetStreamContext, start_intake: StartIntake, events: Events
) -> None:
    # `.invalid` never resolves (RFC 2606): the resolver answers NXDOMAIN.
    await start_intake(retry_base_seconds=0.05)
    spec = tasks_pb2.TaskSpec(
        url="http://no-such-host.invalid/", timeout_ms=10_000, content=tasks_pb2.ContentOptions()
    )

    final = await events.final(await publish(js, spec), within=60)

    assert [event.status for event in events.of(final.task_id)] == [RUNNING, FAILED]
    assert (final.error.code, final.error.retryable) == ("NAVIGATION_FAILED", False)
    assert "no-such-host.invalid does not resolve" in final.error.message
    assert "the name does not exist, so it is not retried" in final.error.message


async def test_storage_down_longer_than_the_uploader_retries_hands_the_task_back_unacked(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    fake_storage: FakeStorage,
    make_settings: SettingsFactory,
    site: Site,
) -> None:
    storage = StorageUploader(
        make_settings(storage_address=fake_storage.address),
        RetryPolicy(attempts=2, first_delay_seconds=0.05, max_delay_seconds=0.05),
    )
    fake_storage.ingest.unavailable_left = 2
    try:
        await start_intake(storage=storage, retry_base_seconds=1.0)
        task_id = await publish(js, content_of(site))

        await assert_eventually(
            lambda: QUEUED in events.statuses(task_id), message="upload failure not reported"
        )
        [queued] = [event for event in events.of(task_id) if event.status == QUEUED]
        assert (queued.error.code, queued.error.retryable) == ("UPLOAD_FAILED", True)
        assert "UNAVAILABLE" in queued.error.message
        assert await queued_tasks(js) == 1, "the task was acked before its artifact was stored"
        assert fake_storage.ingest.stored == []

        final = await events.final(task_id)
    finally:
        await storage.close()

    assert (final.status, final.attempt) == (SUCCEEDED, 2)
    [stored] = fake_storage.ingest.stored
    assert stored.header.task_id == task_id
    assert [ref.id for ref in final.result.artifacts] == ["artifact-1"]
    await assert_eventually(lambda: is_zero(queued_tasks(js)), message="task not acked")


async def test_a_tasks_artifacts_name_the_attempt_and_the_message_that_stored_them(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    fake_storage: FakeStorage,
    make_settings: SettingsFactory,
    site: Site,
) -> None:
    """So storage refuses them once a later attempt has stored its own (zombie uploads)."""
    storage = StorageUploader(make_settings(storage_address=fake_storage.address))
    try:
        await start_intake(storage=storage, retry_base_seconds=0.1)
        spec = failing_on_http_errors(site.url(f"/flaky/{uuid.uuid4().hex}?fails=1"))
        task_id = await publish(js, spec)
        sequence = (await js.stream_info(TASK_STREAM)).state.last_seq

        final = await events.final(task_id, within=30)
    finally:
        await storage.close()

    assert (final.status, final.attempt) == (SUCCEEDED, 2)
    [stored] = fake_storage.ingest.stored
    assert (stored.header.attempt, stored.header.work_sequence) == (2, sequence)
