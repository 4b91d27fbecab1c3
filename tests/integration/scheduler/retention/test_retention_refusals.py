"""The retention sweep when storage refuses some owners, or does not answer for a batch.

Real scheduler and NATS on SQLite and PostgreSQL (conftest.py). Storage's side is
played by a responder on `artifacts.expire` answering as storage does when S3
refuses to delete one owner's objects (storage's own answers: tests/integration/storage).
"""

import datetime as dt
from collections.abc import Callable

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from farm_core.artifact_expiry import (
    ARTIFACTS_EXPIRE_SUBJECT,
    ArtifactOwner,
    decode_expiry,
    encode_answer,
)
from farm_scheduler.retention import StorageRefused, StorageUnconfirmed, TaskRetention
from tests.integration.scheduler.conftest import FAILED, SUCCEEDED, Scheduler, sample
from tests.integration.scheduler.retention.conftest import (
    LONG_AGO,
    THIRTY_DAYS_AGO,
    ended,
    session_row,
    sessions_gone,
    task_gone,
)

pytestmark = pytest.mark.integration

Answer = Callable[[list[ArtifactOwner]], bytes | None]
"""Storage's answer to the owners of one request; None: no answer at all."""


async def answering(nc: Client, answer: Answer) -> None:
    """Answers every artifact expiry on `nc` with `answer`, as the one storage replica."""

    async def heard(message: Msg) -> None:
        body = answer(decode_expiry(message.data))
        if body is not None:
            await message.respond(body)

    await nc.subscribe(ARTIFACTS_EXPIRE_SUBJECT, cb=heard)
    await nc.flush()


def refusing(poisoned: str, *, names_it: bool) -> Answer:
    """Storage whose S3 will not delete `poisoned`'s objects; `names_it`: it says whose."""

    def answer(owners: list[ArtifactOwner]) -> bytes:
        failed = [owner for owner in owners if owner.owner_id == poisoned]
        if not failed:
            return encode_answer(0)
        return encode_answer(0, "AccessDenied", failed if names_it else None)

    return answer


async def test_an_owner_storage_keeps_refusing_holds_back_neither_tasks_nor_sessions(
    scheduler: Scheduler, nc: Client
) -> None:
    poisoned = await ended(scheduler, FAILED, LONG_AGO - dt.timedelta(days=100))
    others = [await ended(scheduler, SUCCEEDED, LONG_AGO) for _ in range(3)]
    session = await session_row(scheduler, LONG_AGO, LONG_AGO)
    await answering(nc, refusing(poisoned, names_it=True))
    kept_before = sample("farm_retention_batches_kept_total")
    sweep = TaskRetention(scheduler.service.store.engine, nc, 30, 2, 30.0)

    for _ in range(2):  # The second pass meets the same refusal, first or not.
        with pytest.raises(StorageRefused) as refused:
            await sweep.purge(THIRTY_DAYS_AGO)

    assert refused.value.swept.kept == 1
    assert not await task_gone(scheduler, poisoned)
    for task_id in others:
        assert await task_gone(scheduler, task_id)
    assert await sessions_gone(scheduler, session)
    assert sample("farm_retention_batches_kept_total") == kept_before + 2


async def test_an_older_storages_failure_keeps_its_whole_batch_and_the_pass_goes_on(
    scheduler: Scheduler, nc: Client
) -> None:
    poisoned = await ended(scheduler, FAILED, LONG_AGO)
    others = [await ended(scheduler, SUCCEEDED, LONG_AGO) for _ in range(3)]
    closed = [await session_row(scheduler, LONG_AGO, LONG_AGO) for _ in range(3)]
    await answering(nc, refusing(poisoned, names_it=False))

    with pytest.raises(StorageRefused) as refused:
        await TaskRetention(scheduler.service.store.engine, nc, 30, 2, 30.0).purge(THIRTY_DAYS_AGO)

    # The poisoned task's batch stays whole (the answer names no owner); the rest go.
    swept = refused.value.swept
    assert (swept.tasks, swept.kept, swept.sessions) == (2, 2, 3)
    assert not await task_gone(scheduler, poisoned)
    assert sum([await task_gone(scheduler, task_id) for task_id in others]) == 2
    assert await sessions_gone(scheduler, *closed)


async def test_a_task_batch_storage_does_not_answer_does_not_keep_the_sessions(
    scheduler: Scheduler, nc: Client
) -> None:
    old = await ended(scheduler, FAILED, LONG_AGO)
    session = await session_row(scheduler, LONG_AGO, LONG_AGO)
    # Storage answers the session's request, not the task's (as if that one were lost).
    await answering(nc, lambda owners: None if owners[0].owner_id == old else encode_answer(1))

    with pytest.raises(StorageUnconfirmed, match="kept until the next pass"):
        await TaskRetention(scheduler.service.store.engine, nc, 30, 100, 0.5).purge(THIRTY_DAYS_AGO)

    assert not await task_gone(scheduler, old)
    assert await sessions_gone(scheduler, session)
