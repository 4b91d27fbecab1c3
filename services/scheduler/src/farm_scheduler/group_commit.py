"""Group commit: new tasks written to SQL and published to JetStream a group at a time.

CreateTasks hands in a whole batch. Single creates (CreateTask, RunTask) of one
tenant that arrive while that tenant's previous group is being written wait and
are written together as the next group, up to `max_group` tasks: one transaction
and pipelined publishes instead of one round trip each. A create that finds no
group in progress is written at once, so grouping adds no wait on an idle
scheduler. Every caller is answered only after its group is in SQL and its
publishes are acknowledged (or left to the republisher, as a single publish
that fails is).
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Histogram

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import FarmError
from farm_core.quotas import TenantQuotas
from farm_core.trace_context import mark, traceparent
from farm_scheduler import metrics
from farm_scheduler.batches import Accepted, Outcome, store_batch
from farm_scheduler.publisher import TaskPublisher
from farm_scheduler.records import TaskRecord
from farm_scheduler.result_cache import looks_up_cache
from farm_scheduler.store import TaskStore

group_size = Histogram(
    "farm_task_write_group_size",
    "Tasks checked and written to SQL by one transaction (a batch, or a group of creates).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)

GroupKey = tuple[str, TenantQuotas | None]
"""Creates are grouped by tenant and the quotas their identity carries."""


async def commit(
    store: TaskStore,
    publisher: TaskPublisher,
    tenant: str,
    specs: Sequence[tasks_pb2.TaskSpec],
    quotas: TenantQuotas | None,
    trace_parents: Sequence[str] | None = None,
) -> list[Outcome]:
    """Stores checked `specs` in one transaction and publishes the new tasks together.

    An accepted new task's record says whether JetStream took it (`published`), so
    RunTask learns it without reading the task again.
    """
    outcomes = await store_batch(store, tenant, specs, quotas, trace_parents)
    group_size.observe(len(specs))
    new = [
        outcome.record for outcome in outcomes if isinstance(outcome, Accepted) and outcome.created
    ]
    # Counted once per spec and cache answer: a batch's tasks mostly share their spec.
    alike: dict[tuple[int, bool], list[TaskRecord]] = {}
    for record in new:
        # id(): the records hold their specs, so no other spec takes the id meanwhile.
        alike.setdefault((id(record.spec), record.cached), []).append(record)
    for records in alike.values():
        metrics.record_created(records[0], looks_up_cache(records[0].spec), len(records))
    # A task answered from the cache is SUCCEEDED already: nothing to run, and no
    # task.publish to name it in its trace.
    for record in new:
        if record.cached:
            mark("task.cached", parent=record.trace_parent, attributes={"farm.task_id": record.id})
    taken = await publisher.publish_many([record for record in new if not record.cached])
    published = {record.id: record for record in taken}
    return [
        Accepted(published[outcome.record.id], outcome.created)
        if isinstance(outcome, Accepted) and outcome.record.id in published
        else outcome
        for outcome in outcomes
    ]


@dataclass
class _Waiting:
    """A single create waiting for its group's write."""

    spec: tasks_pb2.TaskSpec
    trace_parent: str
    answer: asyncio.Future[Accepted] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _forget_unread(answer: asyncio.Future[Accepted]) -> None:
    """Marks the answer's error read: a caller that went away leaves it unread."""
    if not answer.cancelled():
        answer.exception()


class CreateGroups:
    """Writes single creates in groups per tenant, each group as one commit()."""

    def __init__(self, store: TaskStore, publisher: TaskPublisher, max_group: int) -> None:
        self._store = store
        self._publisher = publisher
        self._max_group = max_group
        self._waiting: dict[GroupKey, list[_Waiting]] = {}
        self._writers: dict[GroupKey, asyncio.Task[None]] = {}

    async def create(
        self, tenant: str, spec: tasks_pb2.TaskSpec, quotas: TenantQuotas | None
    ) -> Accepted:
        """Stores and publishes the checked `spec` with its group; its task and whether new.

        Raises what a lone create would: ResourceExhausted at the queued quota, or
        the error that failed the group's write.
        """
        waiting = _Waiting(spec, traceparent())
        waiting.answer.add_done_callback(_forget_unread)
        key = (tenant, quotas)
        self._waiting.setdefault(key, []).append(waiting)
        if key not in self._writers:
            # The writer runs in this caller's context, so the group's SQL spans join the
            # trace of the create that started it (a lone create's, on an idle scheduler);
            # each task's publish is parented by its own caller's span all the same.
            self._writers[key] = asyncio.create_task(self._write(key))
        # A caller that goes away does not stop its group: the task is created anyway,
        # as a create whose answer was lost.
        return await asyncio.shield(waiting.answer)

    async def _write(self, key: GroupKey) -> None:
        """Writes the key's waiting creates a group at a time until none are left."""
        tenant, quotas = key
        try:
            while group := self._next_group(key):
                await self._write_group(tenant, quotas, group)
        finally:
            del self._writers[key]

    def _next_group(self, key: GroupKey) -> list[_Waiting]:
        """Takes up to max_group of the key's waiting creates, oldest first."""
        waiting = self._waiting.get(key, [])
        group, rest = waiting[: self._max_group], waiting[self._max_group :]
        if rest:
            self._waiting[key] = rest
        else:
            self._waiting.pop(key, None)
        return group

    async def _write_group(
        self, tenant: str, quotas: TenantQuotas | None, group: list[_Waiting]
    ) -> None:
        """One commit() of the group; each waiting create gets its outcome."""
        try:
            outcomes = await commit(
                self._store,
                self._publisher,
                tenant,
                [waiting.spec for waiting in group],
                quotas,
                [waiting.trace_parent for waiting in group],
            )
        except Exception as error:
            # Each caller's handler maps (and logs) the error, as for a lone create.
            for waiting in group:
                waiting.answer.set_exception(error)
            return
        except BaseException:
            # Cancelled (the scheduler stopping): its callers are not left waiting.
            for waiting in group:
                waiting.answer.cancel()
            raise
        for waiting, outcome in zip(group, outcomes, strict=True):
            _answer(waiting.answer, outcome)


def _answer(answer: asyncio.Future[Accepted], outcome: Outcome) -> None:
    if isinstance(outcome, FarmError):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)
