"""CreateTasks: a batch of task specs stored in one transaction, with an outcome per item.

The items are checked one by one (an invalid item is refused alone, naming its
index and field); the valid ones are written together under the tenant's quota
lock, so a batch that would pass maxQueuedTasks is accepted up to the quota and
the rest refused item by item. Idempotency keys work as in CreateTask: an item
whose key an earlier task (or an earlier item of the batch) holds gets that task if
it asks for the same spec, and InvalidArgument naming idempotencyKey if not, by the
one rule of store.repeat_of.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import FarmError, InvalidArgument, PermissionDenied, ResourceExhausted
from farm_core.quotas import TenantQuotas
from farm_core.trace_context import traceparent
from farm_scheduler.cache_answers import answered_from_cache
from farm_scheduler.cached_keys import CachedKeys, lookups_skipped
from farm_scheduler.quotas import check_task_quotas, queued_limit
from farm_scheduler.records import (
    TaskRecord,
    new_record,
    new_task_ids,
    row_values,
    spec_values,
    state_values,
)
from farm_scheduler.result_cache import cache_key, looks_up_cache
from farm_scheduler.store import TaskStore, repeat_of
from farm_scheduler.task_rows import insert_rows, queued_count, release_expired_keys

MAX_BATCH_ITEMS = 1000
"""The most task specs one CreateTasks call may carry."""


@dataclass(frozen=True)
class Accepted:
    """An item that has its task: a new one, or the earlier task its idempotency key names."""

    record: TaskRecord
    created: bool


@dataclass(frozen=True)
class SameAs:
    """An item whose idempotency key an earlier item of the batch, `index`, carries.

    It is that item's repeat: that item's task if it got one (and the spec is the
    same), else that item's refusal.
    """

    index: int


Outcome = Accepted | FarmError
"""What became of one item: its task, or why it has none."""


def check_batch_size(count: int) -> None:
    """Raises InvalidArgument naming `requests` unless a batch of `count` items is allowed."""
    if count == 0:
        raise InvalidArgument("requests", f"is required: 1 to {MAX_BATCH_ITEMS} task specs")
    if count > MAX_BATCH_ITEMS:
        raise InvalidArgument(
            "requests",
            f"holds {count} task specs, at most {MAX_BATCH_ITEMS} are allowed in one call; "
            "split the batch",
        )


def check_items(
    specs: Sequence[tasks_pb2.TaskSpec],
    check: Callable[[tasks_pb2.TaskSpec], tasks_pb2.TaskSpec],
) -> tuple[dict[int, tasks_pb2.TaskSpec], dict[int, FarmError]]:
    """Each item's checked spec by index, and each refused item's error by index.

    Items that are the same spec (a batch is often one spec many times) are checked
    once and share the checked spec, which the batch's writing then works on once.
    """
    checked: dict[int, tasks_pb2.TaskSpec] = {}
    refused: dict[int, FarmError] = {}
    outcomes: dict[bytes, tasks_pb2.TaskSpec | FarmError] = {}
    for index, spec in enumerate(specs):
        written = spec.SerializeToString(deterministic=True)
        outcome = outcomes.get(written)
        if outcome is None:
            try:
                outcome = check(spec)
            except (InvalidArgument, PermissionDenied) as error:
                outcome = error
            outcomes[written] = outcome
        if isinstance(outcome, FarmError):
            refused[index] = outcome
        else:
            checked[index] = outcome
    return checked, refused


def _repeat(earlier: TaskRecord, spec: tasks_pb2.TaskSpec) -> Outcome:
    """The outcome of checked `spec`, whose idempotency key `earlier` holds (store.repeat_of)."""
    try:
        return Accepted(repeat_of(earlier, spec), created=False)
    except InvalidArgument as refused:
        return refused


WHOLE_SPEC = "spec"
"""The field a check names when the whole TaskSpec is to blame (CreateTaskRequest.spec)."""


def item_error(index: int, error: FarmError) -> tasks_pb2.CreateTasksError:
    """The response's error for item `index`, refused with `error`, named as the JSON sent.

    A batch's item is the TaskSpec itself (`requests[3]`), so a refusal of the whole
    spec names the item, not `requests[3].spec`, a field no item has.
    """
    item = f"requests[{index}]"
    if isinstance(error, InvalidArgument) and error.field != WHOLE_SPEC:
        field, message = f"{item}.{error.field}", f"{item}.{error.message}"
    elif isinstance(error, InvalidArgument):
        field, message = item, f"{item}: {error.problem}"
    else:
        field, message = item, error.message
    if not message.startswith(item):
        message = f"{item}: {message}"
    return tasks_pb2.CreateTasksError(
        index=index, field=field, code=error.code.name, message=message
    )


async def store_batch(
    store: TaskStore,
    tenant: str,
    specs: Sequence[tasks_pb2.TaskSpec],
    quotas: TenantQuotas | None,
    trace_parents: Sequence[str] | None = None,
) -> list[Outcome]:
    """Stores the new tasks of checked `specs` in one transaction; each spec's outcome.

    The new tasks are unpublished, each parented by its `trace_parents` entry
    (default: the current trace context). An item over the tenant's queued quota
    gets ResourceExhausted. When a concurrent create takes one of the batch's keys
    first, the items are stored one by one instead, as CreateTask stores them.
    """
    # A batch's items share the call's trace context: read once, not once per item.
    parents: Sequence[str] = trace_parents or [traceparent()] * len(specs)
    now = store.now()
    window_start = store.window_start(now)
    keys = {spec.idempotency_key for spec in specs if spec.idempotency_key}
    earlier = {
        record.spec.idempotency_key: record
        for record in await store.find_by_keys(tenant, keys)
        if record.create_time > window_start
    }
    planned: list[Outcome | SameAs] = []
    first_with_key: dict[str, int] = {}
    # Items that share a spec object (check_items) share its cache key, routing and the
    # rest of their first task's record.
    of_spec: dict[int, TaskRecord] = {}
    task_ids = iter(new_task_ids(len(specs)))
    for index, spec in enumerate(specs):
        key = spec.idempotency_key
        if key in earlier:
            planned.append(_repeat(earlier[key], spec))
        elif key in first_with_key:
            planned.append(SameAs(first_with_key[key]))
        else:
            if key:
                first_with_key[key] = index
            first = of_spec.get(id(spec))
            if first is None:
                record = of_spec[id(spec)] = new_record(
                    tenant,
                    spec,
                    quotas,
                    now,
                    parents[index],
                    store.route(spec),
                    cache_key(spec),
                    next(task_ids),
                )
            else:
                record = _like(first, next(task_ids), parents[index])
            planned.append(Accepted(record, created=True))
    try:
        await _insert_new(store, tenant, planned, quotas, list(first_with_key), window_start)
    except IntegrityError:
        return await _one_by_one(store, tenant, specs, quotas, parents)
    return [_resolved(planned, outcome, spec) for outcome, spec in zip(planned, specs, strict=True)]


async def _insert_new(
    store: TaskStore,
    tenant: str,
    planned: list[Outcome | SameAs],
    quotas: TenantQuotas | None,
    new_keys: list[str],
    window_start: dt.datetime,
) -> None:
    """Inserts the planned new tasks that the quota admits; refuses the others in `planned`."""
    limit = queued_limit(quotas)
    async with store.write_transaction(tenant, limit) as connection:
        if new_keys:
            await release_expired_keys(connection, tenant, new_keys, window_start)
        queued = await queued_count(connection, tenant) if limit is not None else 0
        admitted: list[TaskRecord] = []
        # Whether the tasks of a spec (one object, one cache key) are to be looked up in the
        # cache: worked out once per spec; a look-up the filter rules out is counted skipped.
        lookups: dict[int, bool | None] = {}
        skipped = 0
        for index, outcome in enumerate(planned):
            if not isinstance(outcome, Accepted) or not outcome.created:
                continue
            record = outcome.record
            if id(record.spec) not in lookups:
                lookups[id(record.spec)] = _looked_up(record, store.cached_keys)
            lookup = lookups[id(record.spec)]
            skipped += lookup is False
            answered = (
                await answered_from_cache(connection, record, store.cached_keys, store.cache_reach)
                if lookup
                else None
            )
            if answered is not None:
                # Never queued: not the queued quota's.
                planned[index] = Accepted(answered, created=True)
                admitted.append(answered)
                continue
            if limit is not None:
                try:
                    check_task_quotas(tenant, queued, limit)
                except ResourceExhausted as refused:
                    planned[index] = refused
                    continue
                queued += 1
            admitted.append(outcome.record)
        if skipped:
            lookups_skipped.inc(skipped)
        if admitted:
            await insert_rows(connection, _rows(admitted))


def _like(first: TaskRecord, task_id: str, trace_parent: str) -> TaskRecord:
    """A new task like `first` (of the same spec and batch) but for its id and trace parent.

    Copied field by field rather than made by TaskRecord's __init__, which as a frozen
    dataclass's sets each of its 17 fields through object.__setattr__ (with the
    tenant's running limit, a tenth of a busy scheduler's loop during batches).
    """
    record = object.__new__(TaskRecord)
    record.__dict__.update(first.__dict__, id=task_id, trace_parent=trace_parent)
    return record


def _looked_up(record: TaskRecord, cached_keys: CachedKeys) -> bool | None:
    """Whether a new task is looked up in the result cache.

    None if its spec never is, False if the filter rules its key out (a miss
    without a query), True if it is looked up.
    """
    if not looks_up_cache(record.spec):
        return None
    return cached_keys.may_hit(record.tenant, record.cache_key)


def _rows(records: Sequence[TaskRecord]) -> list[dict[str, object]]:
    """The `tasks` rows of new `records`, the columns of a shared spec or state made once."""
    # id(): the records hold their specs and states, so no other takes the id meanwhile.
    of_spec: dict[int, dict[str, object]] = {}
    of_state: dict[int, dict[str, object]] = {}
    rows = []
    for record in records:
        spec, state = record.spec, record.state
        spec_columns = of_spec.get(id(spec))
        if spec_columns is None:
            spec_columns = of_spec[id(spec)] = spec_values(spec)
        state_columns = of_state.get(id(state))
        if state_columns is None:
            state_columns = of_state[id(state)] = state_values(state)
        rows.append(row_values(record, spec_columns, state_columns))
    return rows


def _resolved(
    planned: Sequence[Outcome | SameAs], outcome: Outcome | SameAs, spec: tasks_pb2.TaskSpec
) -> Outcome:
    """`outcome` of `spec`, an item that repeats an earlier item's key resolved as its repeat."""
    if not isinstance(outcome, SameAs):
        return outcome
    first = planned[outcome.index]
    if isinstance(first, Accepted):
        return _repeat(first.record, spec)
    assert not isinstance(first, SameAs), "an item repeats the first item with its key"
    return first


async def _one_by_one(
    store: TaskStore,
    tenant: str,
    specs: Sequence[tasks_pb2.TaskSpec],
    quotas: TenantQuotas | None,
    parents: Sequence[str | None],
) -> list[Outcome]:
    """Each spec stored by its own create, which settles a race for an idempotency key."""
    outcomes: list[Outcome] = []
    for spec, parent in zip(specs, parents, strict=True):
        try:
            record, created = await store.create(tenant, spec, quotas, parent)
        except (ResourceExhausted, InvalidArgument) as refused:
            outcomes.append(refused)
            continue
        outcomes.append(Accepted(record, created))
    return outcomes
