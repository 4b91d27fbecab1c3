"""Answering a new task from the tenant's result cache, inside the create's transaction."""

import dataclasses
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.cached_keys import CachedKeys, lookups_skipped
from farm_scheduler.lifecycle import TaskState
from farm_scheduler.records import TaskRecord
from farm_scheduler.result_cache import looks_up_cache
from farm_scheduler.task_rows import latest_cached_result


async def answered_from_cache(
    connection: AsyncConnection,
    queued: TaskRecord,
    cached_keys: CachedKeys,
    reach: dt.timedelta | None = None,
) -> TaskRecord | None:
    """`queued` answered from the cache (SUCCEEDED at its creation, `cached`), or None.

    A spec whose key `cached_keys` knows has no result is a miss without a query. No
    result older than `reach` answers, whatever the spec's cacheTtlSeconds (None: no
    bound): the retention sweep deletes older ones (retention.cache_reach).
    """
    spec = queued.spec
    if not looks_up_cache(spec):
        return None
    if not cached_keys.may_hit(queued.tenant, queued.cache_key):
        lookups_skipped.inc()
        return None
    accepted = dt.timedelta(seconds=spec.cache_ttl_seconds)
    since = queued.create_time - (accepted if reach is None else min(accepted, reach))
    found = await latest_cached_result(connection, queued.tenant, queued.cache_key, since)
    if found is None:
        return None
    source, result = found
    state = TaskState(
        status=tasks_pb2.TASK_STATUS_SUCCEEDED, finish_time=queued.create_time, result=result
    )
    return dataclasses.replace(
        queued, state=state, published=True, cached=True, cache_source=source
    )
