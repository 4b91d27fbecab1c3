"""The scheduler's tasks: creation with idempotency keys, tenant-scoped reads, pages, state changes.

How a task is read and written as rows (with its attempts) is in task_rows.py, what a
change of its state writes in task_changes.py (TaskChange is also importable from here).
"""

import contextlib
import datetime as dt
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import newest_first, utcnow
from farm_core.errors import (
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from farm_core.idempotency import used_otherwise
from farm_core.paging import Cursor
from farm_core.quotas import TenantQuotas
from farm_core.settings import DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS
from farm_core.tenant_locks import ADVISORY_NAMESPACE, TenantQuotaLock
from farm_scheduler import lifecycle
from farm_scheduler.cache_answers import answered_from_cache
from farm_scheduler.cached_keys import CachedKeys, new_cached_result
from farm_scheduler.cancel_rows import CancelledRows, cancel_rows
from farm_scheduler.lifecycle import Status, TaskState
from farm_scheduler.migrations import NEWEST_REVISION
from farm_scheduler.models import HAS_IDEMPOTENCY_KEY
from farm_scheduler.publish_marks import PublishMarks
from farm_scheduler.quotas import check_task_quotas, queued_limit
from farm_scheduler.records import TaskRecord, new_record, row_values
from farm_scheduler.task_changes import TaskChange as TaskChange  # Its home before task_changes.
from farm_scheduler.task_changes import changed, swap_values
from farm_scheduler.task_rows import (
    INSERT_TASKS,
    STATUS_FAILED,
    STATUS_QUEUED,
    SWAP_TASK,
    queued_count,
    read_task,
    release_expired_keys,
    save_history,
    tasks,
)

MIGRATIONS = "farm_scheduler:migrations"
VERSION_TABLE = "alembic_version_scheduler"
# A state change is a compare-and-set on the task's revision; a few retries absorb
# a concurrent change (an agent's event racing a user's cancel).
MAX_TRANSITION_TRIES = 5
DEFAULT_IDEMPOTENCY_WINDOW = dt.timedelta(days=1)


def repeat_of(earlier: TaskRecord, spec: tasks_pb2.TaskSpec) -> TaskRecord:
    """`earlier`, the task that holds checked `spec`'s idempotency key, if it has that spec.

    The one place of the rule: a repeat gets the first task, unchanged, only if it
    asks for the same spec (after the same checks and defaults); another spec gets
    InvalidArgument naming idempotencyKey, as a key names one request, not any request.
    """
    if earlier.spec is spec or earlier.spec == spec:
        return earlier
    raise used_otherwise(spec.idempotency_key, f"task {earlier.id}", "spec")


class TaskStore(PublishMarks):
    """The tasks and task_attempts tables of one database."""

    def __init__(
        self,
        database_url: str,
        idempotency_window: dt.timedelta = DEFAULT_IDEMPOTENCY_WINDOW,
        clock: Callable[[], dt.datetime] = utcnow,
        route: Callable[[tasks_pb2.TaskSpec], str] = lambda spec: "",
        migration_lock_timeout_seconds: float = DEFAULT_MIGRATION_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(
            database_url,
            MIGRATIONS,
            VERSION_TABLE,
            NEWEST_REVISION,
            migration_lock_timeout_seconds,
        )
        self._idempotency_window, self._clock = idempotency_window, clock
        self.route = route  # A new task's routed_region (routing.router).
        self._quota_lock = TenantQuotaLock(self.engine, ADVISORY_NAMESPACE)
        # Until started over NATS (server.py), every create looks its spec up.
        self.cached_keys = CachedKeys()
        # How old a result may answer the cache at most (retention.cache_reach); None: no bound.
        self.cache_reach: dt.timedelta | None = None

    async def create(
        self,
        tenant: str,
        spec: tasks_pb2.TaskSpec,
        quotas: TenantQuotas | None = None,
        trace_parent: str | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Stores a new QUEUED task, unpublished; the task and whether it is new.

        A tenant's second task with the same idempotency key within the idempotency
        window is not stored: the first one is returned instead if it asks for the
        same spec, and InvalidArgument raised if not (repeat_of). After the window
        the first task gives the key up and a new task takes it. With `quotas`, a
        tenant at its queued quota gets ResourceExhausted; creates of one tenant
        with a queued quota are serialised, so concurrent ones cannot overshoot it.
        The task keeps the tenant's running quota for the agents, and `trace_parent`
        (default: the current trace context, the creating call's) as the parent of
        its publishes. A spec the tenant's cache can answer (result_cache) makes a
        task that is SUCCEEDED at once, `cached`, and never published.
        """
        key = spec.idempotency_key
        now = self._clock()
        window_start = self.window_start(now)
        if key:
            earlier = await self._find_by_key(tenant, key)
            if earlier is not None and earlier.create_time > window_start:
                return repeat_of(earlier, spec), False
        record = new_record(tenant, spec, quotas, now, trace_parent, self.route(spec))
        try:
            return await self._insert(record, queued_limit(quotas), window_start)
        except IntegrityError:
            # A concurrent create with the same key won the race: its task stands.
            earlier = await self._find_by_key(tenant, key) if key else None
            if earlier is None:
                raise
            return repeat_of(earlier, spec), False
        except ResourceExhausted:
            # A concurrent create with the same key may have taken the last place: a
            # repeat of an accepted task gets that task, not a refusal.
            earlier = await self._find_by_key(tenant, key) if key else None
            if earlier is None or earlier.create_time <= window_start:
                raise
            return repeat_of(earlier, spec), False

    async def _insert(
        self, record: TaskRecord, quotas: TenantQuotas | None, window_start: dt.datetime
    ) -> tuple[TaskRecord, bool]:
        """Inserts the task, or its answer from the cache, checking `quotas`; one transaction.

        A task the tenant's result cache answers (result_cache.looks_up_cache) is
        inserted SUCCEEDED and `cached` instead, with the result of the tenant's latest
        task of the same cache key that succeeded within its cacheTtlSeconds; it is
        never queued, so the queued quota is not its.
        """
        tenant, key = record.tenant, record.spec.idempotency_key
        async with self.write_transaction(tenant, quotas) as connection:
            if key:
                await release_expired_keys(connection, tenant, [key], window_start)
            answered = await answered_from_cache(
                connection, record, self.cached_keys, self.cache_reach
            )
            record = answered or record
            if quotas is not None and not record.cached:
                check_task_quotas(tenant, await queued_count(connection, tenant), quotas)
            await connection.execute(INSERT_TASKS, [row_values(record)])
        return record, True

    def now(self) -> dt.datetime:
        """The store's current time, as creates stamp it."""
        return self._clock()

    def window_start(self, now: dt.datetime) -> dt.datetime:
        """When the idempotency window open at `now` began: older tasks give their keys up."""
        return now - self._idempotency_window

    def write_transaction(
        self, tenant: str, quotas: TenantQuotas | None
    ) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A transaction; with `quotas` to check, holding the tenant's quota lock."""
        return self._quota_lock.transaction(tenant) if quotas is not None else self.engine.begin()

    async def find_by_keys(self, tenant: str, keys: Collection[str]) -> list[TaskRecord]:
        """The tenant's tasks that hold one of the idempotency `keys`."""
        if not keys:
            return []
        query = select(tasks).where(
            tasks.c.tenant == tenant, tasks.c.idempotency_key.in_(keys), HAS_IDEMPOTENCY_KEY
        )
        return await self._all(query)

    async def get(self, tenant: str, task_id: str) -> TaskRecord:
        """The tenant's task `task_id`; NotFound if absent or another tenant's."""
        async with self.engine.connect() as connection:
            record = await read_task(connection, task_id, tenant)
        if record is None:
            raise NotFound("task", task_id)
        return record

    async def page(
        self,
        tenant: str,
        *,
        status: Status,
        labels: Sequence[tuple[str, str]],
        size: int,
        after: Cursor | None,
    ) -> list[TaskRecord]:
        """Up to `size` of the tenant's tasks, newest first, after `after`.

        `status` UNSPECIFIED lists every state; a task must carry all of `labels`.
        """
        query = select(tasks).where(tasks.c.tenant == tenant)
        if status != tasks_pb2.TASK_STATUS_UNSPECIFIED:
            query = query.where(tasks.c.status == tasks_pb2.TaskStatus.Name(status))
        for key, value in labels:
            query = query.where(tasks.c.labels[key].as_string() == value)
        return await self._all(newest_first(query, tasks.c.create_time, tasks.c.id, after, size))

    async def dead_letters(
        self, tenant: str | None, *, size: int, after: Cursor | None
    ) -> list[TaskRecord]:
        """Up to `size` FAILED tasks of `tenant` (None: all), last given up first, after `after`.

        The cursor holds a task's dead time and id.
        """
        query = select(tasks).where(tasks.c.status == STATUS_FAILED, tasks.c.dead_time.is_not(None))
        if tenant is not None:
            query = query.where(tasks.c.tenant == tenant)
        return await self._all(newest_first(query, tasks.c.dead_time, tasks.c.id, after, size))

    async def overdue(self, now: dt.datetime, limit: int) -> list[str]:
        """Ids of up to `limit` QUEUED tasks whose deadline is `now` or earlier, earliest first."""
        query = (
            select(tasks.c.id)
            .where(
                tasks.c.status == STATUS_QUEUED,
                tasks.c.deadline.is_not(None),
                tasks.c.deadline <= now,
            )
            .order_by(tasks.c.deadline)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).scalars())

    async def apply_event(
        self, event: queue_pb2.AgentEvent, received: dt.datetime, sequence: int = 0
    ) -> TaskChange | None:
        """Applies an agent's event; the change, or None for no change or an unknown task.

        `sequence` is the event's FARM_EVENTS stream sequence (0 when unknown).
        """
        return await self._transition(
            event.task_id,
            None,
            lambda record: lifecycle.apply_event(record.state, event, received, sequence),
        )

    async def cancel(self, tenant: str, task_id: str) -> TaskChange | None:
        """Cancels the tenant's task; None if it had ended already. NotFound if there is none."""
        now = self._clock()
        return await self._transition(
            task_id, tenant, lambda record: lifecycle.cancel(record.state, now)
        )

    async def cancel_many(self, tenant: str, task_ids: Sequence[str]) -> CancelledRows:
        """Cancels the tenant's tasks `task_ids` (distinct) as `cancel` does, a chunk a transaction.

        An id in no part of the answer is not the tenant's task; one whose row kept
        changing is raced out here (`lost`) and cancelled alone, so it is in the answer.
        """
        done = await cancel_rows(self.engine, self.cached_keys, tenant, task_ids, self._clock())
        for task_id in done.lost:
            try:
                change = await self.cancel(tenant, task_id)
                if change is not None:
                    done.changes[task_id] = change
                else:
                    done.ended[task_id] = await self.get(tenant, task_id)
            except (NotFound, Unavailable) as refused:
                done.refused[task_id] = refused  # Deleted meanwhile, or still changing.
        return done

    async def expire(self, task_id: str, now: dt.datetime) -> TaskChange | None:
        """Fails the task if it is still QUEUED at its deadline; None if it is not."""

        def expired(record: TaskRecord) -> TaskState | None:
            deadline = record.deadline
            if deadline is None or deadline > now:
                return None
            return lifecycle.expire(record.state, now, deadline)

        return await self._transition(task_id, None, expired)

    async def requeue(
        self,
        tenant: str | None,
        task_id: str,
        now: dt.datetime,
        event_sequence: int,
        ended_since: dt.datetime | None = None,
    ) -> TaskChange:
        """Queues a FAILED task of `tenant` (None: any) again, unpublished, with fresh attempts.

        NotFound if there is no such task; FailedPrecondition if it is not FAILED, its
        deadline has passed, or it ended before `ended_since` (retention.requeueable_since).
        """

        def requeued(record: TaskRecord) -> TaskState | None:
            status = record.state.status
            if status != tasks_pb2.TASK_STATUS_FAILED:
                raise FailedPrecondition(
                    f"task {task_id!r} is {tasks_pb2.TaskStatus.Name(status)}: "
                    "only a FAILED task can be requeued"
                )
            deadline = record.deadline
            if deadline is not None and deadline <= now:
                raise FailedPrecondition(
                    f"task {task_id!r} cannot be requeued: its deadline "
                    f"{deadline.isoformat()} has passed"
                )
            finish_time = record.state.finish_time
            if (
                ended_since is not None
                and finish_time is not None
                and finish_time < ended_since
                and record.create_time < ended_since
            ):
                raise FailedPrecondition(
                    f"task {task_id!r} cannot be requeued: it ended {finish_time.isoformat()}, "
                    "past FARM_SCHEDULER_TASK_RETENTION_DAYS (or within an hour of it), "
                    "and is being deleted"
                )
            return lifecycle.requeue(record.state, now, event_sequence)

        change = await self._transition(task_id, tenant, requeued)
        if change is None and tenant is None:
            raise NotFound("task", task_id)  # Of no tenant: an operator's typo.
        if change is None:
            raise FailedPrecondition(f"task {task_id!r} could not be requeued")
        return change

    async def _transition(
        self,
        task_id: str,
        tenant: str | None,
        change: Callable[[TaskRecord], TaskState | None],
    ) -> TaskChange | None:
        for _ in range(MAX_TRANSITION_TRIES):
            async with self.engine.begin() as connection:
                before = await read_task(connection, task_id, tenant, for_update=True)
                if before is None:
                    if tenant is not None:
                        raise NotFound("task", task_id)
                    return None
                state = change(before)
                if state is None:
                    return None
                after = changed(before, state)
                swapped = await connection.execute(SWAP_TASK, swap_values(before, after))
                if swapped.rowcount == 1:
                    await save_history(connection, task_id, before.state.history, state.history)
                    if new_cached_result(before, after):
                        # Before the commit: whoever reads the success finds it cached.
                        await self.cached_keys.announce(after.tenant, after.cache_key)
                    return TaskChange(before, after)
        raise Unavailable(f"task {task_id!r} kept changing while being updated; try again")

    async def _find_by_key(self, tenant: str, key: str) -> TaskRecord | None:
        query = select(tasks).where(
            tasks.c.tenant == tenant, tasks.c.idempotency_key == key, HAS_IDEMPOTENCY_KEY
        )
        found = await self._all(query)
        return found[0] if found else None
