"""Callbacks from a real scheduler to a receiver on 127.0.0.1: signed, retried, durable."""

import json

import grpc
from google.protobuf import json_format

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import RPC_TIMEOUT, Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    TIMEOUT,
    Scheduler,
    StartScheduler,
    counted,
    rpc_error,
    sample,
    succeeded_result,
    until,
)
from tests.webhook_receiver import Receiver

CALLBACKS = {
    "callback_allow": "127.0.0.0/8",
    "callback_retry_first_seconds": 0.2,
    "callback_poll_seconds": 0.05,
}


async def callback_attempts(scheduler: Scheduler, task_id: str, count: int) -> tasks_pb2.Task:
    """Waits until the task shows `count` callback attempts; the task then."""

    async def there() -> bool:
        return len((await scheduler.get(task_id)).callback_attempts) >= count

    await assert_eventually(there, message=f"task {task_id} has not {count} callback attempts")
    return await scheduler.get(task_id)


async def received(receiver: Receiver, count: int) -> list[dict[str, object]]:
    """Waits until `receiver` has `count` deliveries; their bodies as JSON."""

    async def there() -> bool:
        return len(receiver.received) >= count

    await assert_eventually(there, message=f"the receiver has not {count} deliveries")
    return [json.loads(each.body) for each in receiver.received]


async def test_a_task_answered_from_the_cache_calls_back_marked_cached(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(**CALLBACKS)
    first = await scheduler.create()
    assert (await queue.take()).task_id == first.id
    await queue.report(first.id, SUCCEEDED, result=succeeded_result())
    await until(scheduler, first.id, SUCCEEDED)
    delivered = sample("farm_callbacks_delivered_total")

    with Receiver(200).running() as receiver:
        cached = await scheduler.create(callback_url=receiver.url)
        [posted] = await received(receiver, 1)
        task = await callback_attempts(scheduler, cached.id, 1)

    assert (cached.status, cached.cached) == (SUCCEEDED, True)
    assert (posted["id"], posted["status"], posted["cached"]) == (
        cached.id,
        "TASK_STATUS_SUCCEEDED",
        True,
    )
    assert json_format.ParseDict(posted, tasks_pb2.Task()).result == succeeded_result()
    assert task.callback_status == tasks_pb2.CALLBACK_STATUS_DELIVERED
    # Counted just after the attempt's row is written, which GetTask may see first.
    await counted("farm_callbacks_delivered_total", delivered + 1)


async def test_a_requeued_task_calls_back_again_when_it_ends_again(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(**CALLBACKS)
    with Receiver(200).running() as receiver:
        task = await scheduler.create(callback_url=receiver.url, maxAttempts=1)
        await queue.report(task.id, RUNNING, 1)
        await queue.report(task.id, FAILED, 1, error=TIMEOUT)
        await until(scheduler, task.id, FAILED)
        await received(receiver, 1)
        await scheduler.admin.RequeueDeadLetter(
            admin_pb2.RequeueDeadLetterRequest(task_id=task.id),
            metadata=scheduler.auth("admin"),
            timeout=RPC_TIMEOUT,
        )
        await queue.report(task.id, RUNNING, 1)
        await queue.report(task.id, SUCCEEDED, 1, result=succeeded_result())
        bodies = await received(receiver, 2)
        ended = await until(scheduler, task.id, SUCCEEDED)

    assert [body["status"] for body in bodies] == ["TASK_STATUS_FAILED", "TASK_STATUS_SUCCEEDED"]
    assert {body["id"] for body in bodies} == {task.id}
    # Two ends, two events: a receiver that drops repeats by event id keeps both.
    assert [each.headers["Farm-Event-Id"] for each in receiver.received] == [
        f"{task.id}.1",
        f"{task.id}.2",
    ]
    assert ended.callback_status == tasks_pb2.CALLBACK_STATUS_DELIVERED


async def test_failed_and_given_up_deliveries_are_counted(
    start_scheduler: StartScheduler,
) -> None:
    scheduler = await start_scheduler(**CALLBACKS, callback_retry_window_seconds=0.3)
    failed_retried = sample("farm_callback_attempts_failed_total", retried="true")
    failed_last = sample("farm_callback_attempts_failed_total", retried="false")
    given_up = sample("farm_callbacks_given_up_total")
    attempts = sample("farm_callback_attempt_seconds_count")
    with Receiver(500).running() as receiver:
        created = await scheduler.create(callback_url=receiver.url)
        await scheduler.cancel(created.id)

        async def gave_up() -> bool:
            task = await scheduler.get(created.id)
            return task.callback_status == tasks_pb2.CALLBACK_STATUS_FAILED

        await assert_eventually(gave_up, message="the callback was never given up")
    tries = len(receiver.received)
    # Counted just after the last attempt's row is written, which GetTask may see first.
    await counted("farm_callbacks_given_up_total", given_up + 1)
    assert sample("farm_callback_attempts_failed_total", retried="false") == failed_last + 1
    assert sample("farm_callback_attempts_failed_total", retried="true") == (
        failed_retried + tries - 1
    )
    assert sample("farm_callback_attempt_seconds_count") == attempts + tries


async def test_a_callback_retried_across_a_scheduler_restart_is_delivered_signed(
    start_scheduler: StartScheduler,
) -> None:
    with Receiver(500, 500, 200).running() as receiver:
        first = await start_scheduler(**CALLBACKS)
        secret = (
            await first.tasks.GetWebhookSecret(
                tasks_pb2.GetWebhookSecretRequest(), metadata=first.auth()
            )
        ).secret
        created = await first.create(callback_url=receiver.url)
        assert created.callback_status == tasks_pb2.CALLBACK_STATUS_PENDING
        await first.cancel(created.id)
        await callback_attempts(first, created.id, 1)
        # The first scheduler stops mid-retry; a new one on the same database goes on.
        await first.service.drain(0)
        second = await start_scheduler(**CALLBACKS)
        task = await callback_attempts(second, created.id, 3)

    assert task.callback_status == tasks_pb2.CALLBACK_STATUS_DELIVERED
    assert [attempt.http_status for attempt in task.callback_attempts] == [500, 500, 200]
    assert [attempt.attempt for attempt in task.callback_attempts] == [1, 2, 3]
    assert task.callback_attempts[0].error == "the receiver answered HTTP 500"
    assert task.callback_attempts[2].error == ""
    assert len(receiver.received) == 3
    for number, received in enumerate(receiver.received, start=1):
        assert received.signed_by(secret)
        assert not received.signed_by(secret + "x")
        assert received.headers["Farm-Task-Id"] == created.id
        assert received.headers["Farm-Delivery-Attempt"] == str(number)
        # One end sent three times: one event id, so a receiver handles it once.
        assert received.headers["Farm-Event-Id"] == f"{created.id}.1"
        assert received.event_signed_by(secret)
    posted = json.loads(receiver.received[-1].body)
    assert posted["id"] == created.id
    assert posted["status"] == "TASK_STATUS_CANCELLED"
    assert posted["spec"]["callbackUrl"] == receiver.url
    assert len(posted["callbackAttempts"]) == 2
    json_format.ParseDict(posted, tasks_pb2.Task())


async def test_a_rotated_secret_signs_next_to_the_previous_one(scheduler: Scheduler) -> None:
    before = await scheduler.tasks.GetWebhookSecret(
        tasks_pb2.GetWebhookSecretRequest(), metadata=scheduler.auth()
    )
    rotated = await scheduler.tasks.RotateWebhookSecret(
        tasks_pb2.RotateWebhookSecretRequest(), metadata=scheduler.auth()
    )
    again = await scheduler.tasks.GetWebhookSecret(
        tasks_pb2.GetWebhookSecretRequest(), metadata=scheduler.auth()
    )
    assert before.secret.startswith("whsec_") and rotated.secret.startswith("whsec_")
    assert rotated.secret != before.secret
    assert again.secret == rotated.secret
    assert rotated.HasField("previous_valid_until")
    other = await scheduler.tasks.GetWebhookSecret(
        tasks_pb2.GetWebhookSecretRequest(), metadata=scheduler.auth(tenant="someone-else")
    )
    assert other.secret not in (before.secret, rotated.secret)


async def test_a_private_callback_address_is_refused_unless_allowed(scheduler: Scheduler) -> None:
    error = await rpc_error(scheduler.create(callback_url="http://127.0.0.1:9/hook"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("callbackUrl: is refused")
    assert "FARM_SCHEDULER_CALLBACK_ALLOW" in (error.details() or "")
    # Another spelling of the same address is refused for its spelling, not let through.
    error = await rpc_error(scheduler.create(callback_url="http://127.1:9/hook"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("callbackUrl: host '127.1' ends in a number")


async def test_a_callback_host_that_does_not_exist_fails_at_once_saying_so(
    start_scheduler: StartScheduler,
) -> None:
    # `.invalid` never resolves (RFC 2606): the resolver answers NXDOMAIN locally. No
    # later attempt within the hour of retries could reach it.
    scheduler = await start_scheduler(**CALLBACKS)
    created = await scheduler.create(callback_url="http://hooks.farm.invalid/hook")
    await scheduler.cancel(created.id)

    async def given_up() -> bool:
        task = await scheduler.get(created.id)
        return task.callback_status == tasks_pb2.CALLBACK_STATUS_FAILED

    await assert_eventually(given_up, message="the callback to a missing host was not given up")
    task = await scheduler.get(created.id)
    [attempt] = task.callback_attempts
    assert attempt.http_status == 0
    assert attempt.error.startswith("hooks.farm.invalid does not resolve ("), attempt.error
    assert attempt.error.endswith("; the name does not exist, so it is not retried")


async def test_a_backlog_larger_than_the_concurrency_is_delivered_without_waiting_for_the_poll(
    start_scheduler: StartScheduler,
) -> None:
    # Neither scheduler looks again within the test after its first look, at its start:
    # the second finds five due for its two places, and must go on as places free up.
    quiet = {**CALLBACKS, "callback_poll_seconds": 3600.0}
    with Receiver(200).running() as receiver:
        first = await start_scheduler(**quiet)
        created = [await first.create(callback_url=receiver.url) for _ in range(5)]
        for task in created:
            await first.cancel(task.id)
        await start_scheduler(**quiet, callback_concurrency=2)
        bodies = await received(receiver, 5)

    assert sorted(str(body["id"]) for body in bodies) == sorted(task.id for task in created)


async def test_a_redirect_is_not_followed_and_its_attempt_says_where_it_pointed(
    start_scheduler: StartScheduler,
) -> None:
    # A 307 would be POSTed again to its Location if it were followed.
    scheduler = await start_scheduler(**CALLBACKS)
    with Receiver(307, 200, location="https://hooks.example.net/farm").running() as receiver:
        created = await scheduler.create(callback_url=receiver.url)
        await scheduler.cancel(created.id)
        task = await callback_attempts(scheduler, created.id, 2)

    assert len(receiver.received) == 2
    first, second = task.callback_attempts
    assert (first.http_status, second.http_status) == (307, 200)
    assert first.error == (
        "the receiver answered HTTP 307, a redirect to https://hooks.example.net/farm, "
        "which callbacks do not follow: give the final URL as callbackUrl"
    )
    assert task.callback_status == tasks_pb2.CALLBACK_STATUS_DELIVERED
