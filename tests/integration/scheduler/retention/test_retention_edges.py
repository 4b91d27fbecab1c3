"""The retention sweep at its edges: what it must never delete, and a backlog it must get through.

Real scheduler, storage (SeaweedFS) and NATS on SQLite and PostgreSQL (conftest.py).
"""

import datetime as dt
from collections.abc import Sequence

import grpc
import nats
import pytest
from nats.aio.client import Client

from farm_core.artifact_expiry import ArtifactOwner
from farm_scheduler.retention import StorageUnconfirmed, TaskRetention
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.scheduler.admin_calls import requeue
from tests.integration.scheduler.agent_side import Queue
from tests.integration.scheduler.conftest import (
    FAILED,
    QUEUED,
    SUCCEEDED,
    Scheduler,
    StartScheduler,
    sample,
    succeeded_result,
    until,
)
from tests.integration.scheduler.retention.conftest import (
    LATELY,
    LONG_AGO,
    NOW,
    RESULT,
    THIRTY_DAYS_AGO,
    artifact_gone,
    ended,
    retention_of,
    session_row,
    stored,
    task_gone,
)
from tests.integration.storage.conftest import Storage, agent_token
from tests.integration.storage.saved_calls import PNG_A

pytestmark = pytest.mark.integration

BATCH = 2
"""A batch size the tests' backlogs are several times."""


async def kept_behind(scheduler: Scheduler, count: int, finish_time: dt.datetime) -> list[str]:
    """`count` old tasks each kept by a recent task answered from its cache; their ids."""
    sources = []
    for _ in range(count):
        source = await ended(scheduler, SUCCEEDED, finish_time, cache_key="c" * 64, result=RESULT)
        await ended(scheduler, SUCCEEDED, LATELY, cached=True, cache_source=source, result=RESULT)
        sources.append(source)
    return sources


async def test_a_backlog_led_by_kept_tasks_is_swept_to_its_end(
    scheduler: Scheduler, storage: Storage, nats_server: NatsServer
) -> None:
    # The kept tasks are the oldest, so any batch taken in finish order would be theirs.
    oldest = LONG_AGO - dt.timedelta(days=100)
    kept = await kept_behind(scheduler, 3 * BATCH, oldest)
    pending_dead_letters = [
        await ended(scheduler, FAILED, oldest, dead_letter_pending=True) for _ in range(BATCH)
    ]
    doomed = [await ended(scheduler, FAILED, LONG_AGO) for _ in range(3 * BATCH + 1)]
    doomed_artifacts = [await stored(storage, task_id) for task_id in doomed]
    nc = await nats.connect(nats_server.url)
    try:
        sweep = TaskRetention(scheduler.service.store.engine, nc, 30, BATCH, 30.0)
        swept = await sweep.purge(THIRTY_DAYS_AGO)
        again = await sweep.purge(THIRTY_DAYS_AGO)
    finally:
        await nc.close()

    assert swept.tasks == len(doomed)
    assert again.tasks == 0
    for task_id, artifact_id in zip(doomed, doomed_artifacts, strict=True):
        assert await task_gone(scheduler, task_id)
        assert await artifact_gone(storage, artifact_id)
    for task_id in (*kept, *pending_dead_letters):
        assert not await task_gone(scheduler, task_id)


class RequeuedMidSweep(TaskRetention):
    """A sweep during which, once it has picked its batch, the batch's dead letter is requeued.

    The requeue comes after the sweep chose the task and before storage deletes its
    artifacts; if it is let through, the new run uploads an artifact at once.
    """

    def __init__(self, scheduler: Scheduler, storage: Storage, nc: Client) -> None:
        super().__init__(scheduler.service.store.engine, nc, 30, 100, 30.0)
        self._scheduler = scheduler
        self._storage = storage
        self.refusal: grpc.StatusCode | None = None
        self.new_artifacts: list[str] = []

    async def _expire_artifacts(self, owners: Sequence[ArtifactOwner]) -> list[ArtifactOwner]:
        for owner in owners:
            try:
                await requeue(self._scheduler, owner.owner_id)
            except grpc.aio.AioRpcError as error:
                self.refusal = error.code()
                continue
            self.new_artifacts.append(await stored(self._storage, owner.owner_id, "rerun"))
        return await super()._expire_artifacts(owners)


async def test_a_dead_letter_being_swept_is_not_requeued_to_lose_its_new_artifacts(
    scheduler: Scheduler, storage: Storage, nats_server: NatsServer
) -> None:
    dead = await ended(scheduler, FAILED, LONG_AGO, dead_time=LONG_AGO)
    old_artifact = await stored(storage, dead)
    nc = await nats.connect(nats_server.url)
    try:
        sweep = RequeuedMidSweep(scheduler, storage, nc)
        swept = await sweep.purge(THIRTY_DAYS_AGO)
    finally:
        await nc.close()

    # Requeued, it would stay QUEUED while its new run's artifact went with the old ones.
    assert sweep.new_artifacts == []
    assert sweep.refusal == grpc.StatusCode.FAILED_PRECONDITION
    assert swept.tasks == 1
    assert await task_gone(scheduler, dead)
    assert await artifact_gone(storage, old_artifact)


async def test_neighbours_whose_keys_share_a_prefix_keep_their_artifacts(
    scheduler: Scheduler, storage: Storage
) -> None:
    old = await ended(scheduler, SUCCEEDED, LONG_AGO)
    own = await stored(storage, old)
    longer_id = await stored(storage, f"{old}0")
    other_tenant = f"{storage.tenant}x"
    # Another tenant's artifact of the same task id (artifact names are unique per task id).
    await storage.upload(
        old, "theirs", PNG_A, tenant=other_tenant, metadata=agent_token(other_tenant)
    )

    await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert await artifact_gone(storage, own)
    assert storage.object_names(f"{storage.tenant}/{old}/") == []
    assert (await storage.get(longer_id)).id == longer_id
    assert storage.object_names(f"{storage.tenant}/{old}0/") != []
    assert storage.object_names(f"{other_tenant}/{old}/") != []


async def test_without_storage_answering_no_task_goes_and_the_metric_says_so(
    scheduler: Scheduler,
) -> None:
    old = await ended(scheduler, FAILED, LONG_AGO)
    kept_before = sample("farm_retention_batches_kept_total")

    with pytest.raises(StorageUnconfirmed, match="kept until the next pass"):
        await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert (await scheduler.get(old)).status == FAILED
    # At least: the scheduler's own loop, whose first round runs at start, meets the old
    # task too when that round begins late (a loaded machine), and counts its own batch.
    assert sample("farm_retention_batches_kept_total") >= kept_before + 1


async def test_a_pass_whose_answer_came_too_late_is_finished_by_the_next(
    scheduler: Scheduler, storage: Storage, nats_server: NatsServer
) -> None:
    old = await ended(scheduler, SUCCEEDED, LONG_AGO)
    artifact = await stored(storage, old)
    nc = await nats.connect(nats_server.url)
    try:
        impatient = TaskRetention(scheduler.service.store.engine, nc, 30, 100, 0.001)
        with pytest.raises(StorageUnconfirmed):
            await impatient.purge(THIRTY_DAYS_AGO)
        # Storage deleted the artifacts all the same; the task stayed for the next pass.
        await assert_eventually(lambda: artifact_gone(storage, artifact), message="kept")
        assert (await scheduler.get(old)).status == SUCCEEDED
        swept = await TaskRetention(scheduler.service.store.engine, nc, 30, 100, 30.0).purge(
            THIRTY_DAYS_AGO
        )
    finally:
        await nc.close()

    assert swept.tasks == 1
    assert await task_gone(scheduler, old)
    assert storage.object_names(f"{storage.tenant}/{old}/") == []


async def test_a_dead_letter_inside_retention_or_kept_for_ever_is_requeued(
    scheduler: Scheduler, start_scheduler: StartScheduler, storage: Storage
) -> None:
    inside = await ended(scheduler, FAILED, NOW - dt.timedelta(days=29), dead_time=LATELY)
    ancient = await ended(scheduler, FAILED, NOW - dt.timedelta(days=3000), dead_time=LATELY)
    keeps_all = await start_scheduler(task_retention_days=0)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await requeue(scheduler, ancient)

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FARM_SCHEDULER_TASK_RETENTION_DAYS" in str(refused.value.details())
    assert (await requeue(scheduler, inside)).status == QUEUED
    assert (await requeue(keeps_all, ancient)).status == QUEUED


async def test_a_task_an_agent_with_a_slow_clock_just_ended_is_kept(
    scheduler: Scheduler, queue: Queue, storage: Storage
) -> None:
    # An agent without a real-time clock (a Raspberry Pi booted offline) dates its report 1970.
    task = await scheduler.create()
    assert (await queue.take()).task_id == task.id
    artifact = await stored(storage, task.id)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    await queue.report(task.id, SUCCEEDED, result=succeeded_result(), time=epoch)
    await until(scheduler, task.id, SUCCEEDED)

    swept = await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert swept.tasks == 0
    assert (await scheduler.get(task.id)).status == SUCCEEDED
    assert (await storage.get(artifact)).id == artifact


async def test_a_session_an_agent_with_a_slow_clock_just_closed_is_kept(
    scheduler: Scheduler, storage: Storage
) -> None:
    session_id = await session_row(
        scheduler, NOW, close_time=dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    )
    recording = await stored(storage, session_id, "recording")

    swept = await retention_of(scheduler).purge(THIRTY_DAYS_AGO)

    assert swept.sessions == 0
    assert (await storage.get(recording)).id == recording
