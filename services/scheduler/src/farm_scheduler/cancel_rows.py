"""Many of a tenant's tasks cancelled in a few transactions: CancelTasks' rows.

Each chunk of ids is one transaction that reads its tasks FOR UPDATE (with their
attempts) in one query and writes each cancel as TaskStore.cancel writes one: a
compare-and-set on the row's revision, then the attempts the change altered. A row
that changed under the swap all the same (SQLite takes no row locks) is left out of
the chunk's answer as `lost`, for the caller to cancel alone, with its retries.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.errors import FarmError
from farm_scheduler import lifecycle
from farm_scheduler.cached_keys import CachedKeys, new_cached_result
from farm_scheduler.records import TaskRecord
from farm_scheduler.task_changes import TaskChange, changed, swap_values
from farm_scheduler.task_rows import SWAP_TASK, read_tasks, save_history, tasks

CANCEL_CHUNK = 250
"""How many tasks one transaction of a batch cancel reads and writes: a chunk's locks
are held for a few milliseconds, and its query stays well under any bound-parameter cap."""


@dataclass
class CancelledRows:
    """What a batch cancel's transactions did, by task id; an id in none was not found."""

    changes: dict[str, TaskChange] = field(default_factory=dict)
    """The tasks cancelled."""
    ended: dict[str, TaskRecord] = field(default_factory=dict)
    """The tasks that had ended before, as they stand."""
    lost: list[str] = field(default_factory=list)
    """The tasks whose row changed under their swap: to be cancelled one at a time."""
    refused: dict[str, FarmError] = field(default_factory=dict)
    """The lost tasks that could not be cancelled alone either (deleted, still changing)."""


async def cancel_rows(
    engine: AsyncEngine,
    cached_keys: CachedKeys,
    tenant: str,
    task_ids: Sequence[str],
    now: dt.datetime,
    chunk: int = CANCEL_CHUNK,
) -> CancelledRows:
    """Cancels the tenant's `task_ids` (distinct), `chunk` to a transaction."""
    done = CancelledRows()
    for start in range(0, len(task_ids), chunk):
        await _cancel_chunk(engine, cached_keys, tenant, task_ids[start : start + chunk], now, done)
    return done


async def _cancel_chunk(
    engine: AsyncEngine,
    cached_keys: CachedKeys,
    tenant: str,
    task_ids: Sequence[str],
    now: dt.datetime,
    done: CancelledRows,
) -> None:
    """One transaction: the chunk's tasks read FOR UPDATE, each cancelled by a swap."""
    query = (
        select(tasks)
        .where(tasks.c.tenant == tenant, tasks.c.id.in_(task_ids))
        .order_by(tasks.c.id)  # Locks taken in one order: two batches cannot deadlock.
        .with_for_update()
    )
    async with engine.begin() as connection:
        for before in await read_tasks(connection, query):
            state = lifecycle.cancel(before.state, now)
            if state is None:
                done.ended[before.id] = before
                continue
            after = changed(before, state)
            swapped = await connection.execute(SWAP_TASK, swap_values(before, after))
            if swapped.rowcount != 1:
                done.lost.append(before.id)
                continue
            await save_history(connection, before.id, before.state.history, state.history)
            if new_cached_result(before, after):
                await cached_keys.announce(after.tenant, after.cache_key)
            done.changes[before.id] = TaskChange(before, after)
