"""Marks the tasks that end while work on them may still be out there, for agents and storage.

A cancelled task, and one failed by a delivery that never started it (its attempts
used up or its deadline passed, while an earlier, cut-off attempt may still run),
is put in the bucket CANCEL_BUCKET with the reason (`farm_core.task_ends`), and a
cancel notice stops an attempt still running where the notice reaches it. A task
that ends by its own attempt's report is not marked (that attempt is done) unless
the attempt's message was delivered again meanwhile (`AgentEvent.redelivered`, or
its final event reached JetStream late: farm_scheduler.events): the redelivery,
waiting while the attempt ran, is acked unrun. A requeue withdraws the mark.

Who orders decides whether a task gets an order (a mark or a withdrawal), after the
commit that ended or requeued it; what the bucket then says is the task's row's, by
one rule (`end_mark`). Orders for one task from two callers (two replicas) reach
NATS in any order, so each is a compare-and-set: read the entry's revision, then the
task's row, then write what the row says if the entry is still at that revision,
else read both again. A write that lands names the revision before it, so its row
read came after every write before it, each of which followed its own commit: the
last write says what the last commit says, and a requeued task's stale mark is never
written after its withdrawal.

An order NATS did not take is kept in SQL (`pending_end_marks`, the latest order for
a task replacing an earlier one) and made by the republisher's rounds
(`retry_pending`), by whichever replica runs one, also after a restart: until then
an agent would run the task's queued message. The task's end stands in the
database either way.
"""

import datetime as dt
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

import nats.errors
from nats.aio.client import Client
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from sqlalchemy import Row, RowMapping, Table, and_, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core import task_ends
from farm_core.kv import CAS_TRIES, Contended, delete_at, delete_if_new, latest_revision
from farm_core.queue import CANCEL_BUCKET, cancel_subject
from farm_scheduler import lifecycle
from farm_scheduler.models import PendingEndMarkRow
from farm_scheduler.pipelined import gather_bounded
from farm_scheduler.retry_outbox import Kept, RetryOutbox
from farm_scheduler.task_rows import tasks

log = logging.getLogger(__name__)

pending_marks = cast(Table, PendingEndMarkRow.__table__)

_STATE_AND_KEPT = (
    select(tasks.c.status, tasks.c.error_code, pending_marks.c.try_time)
    .select_from(tasks.outerjoin(pending_marks, pending_marks.c.task_id == tasks.c.id))
    .where(tasks.c.id == bindparam("task_id"))
)
"""The task's state and the order kept for it, if any: one primary-key read."""
_STATES_AND_KEPT = select(
    tasks.c.id, tasks.c.status, tasks.c.error_code, pending_marks.c.try_time
).select_from(tasks.outerjoin(pending_marks, pending_marks.c.task_id == tasks.c.id))
"""As _STATE_AND_KEPT, of many tasks: add their ids."""
_READ_CHUNK = 500
_NOT_WRITTEN = (nats.errors.Error, TimeoutError, Contended)
"""What a write NATS did not take fails with; the order is kept for a retry."""


def end_mark(status: lifecycle.Status, error_code: str) -> str:
    """What the bucket says of a task in `status` once it has an order; "" for no mark.

    An ended task is marked with its reason (farm_core.task_ends), one queued or
    running (again, after a requeue) is not. Whether a task gets an order at all is
    its caller's to decide: one ended by its own attempt's report gets none.
    """
    if status == lifecycle.CANCELLED:
        return task_ends.CANCELLED
    if status == lifecycle.SUCCEEDED:
        return task_ends.SUCCEEDED
    if status == lifecycle.FAILED:
        return task_ends.failed(error_code)
    return ""


@dataclass(frozen=True)
class _Written:
    """What an order wrote: the mark ("" none), and when the order kept for the task was."""

    mark: str
    kept: dt.datetime | None


class EndMarks:
    """Writes and withdraws the marks of ended tasks; keeps the ones NATS refused in SQL."""

    def __init__(self, nc: Client, ended_tasks: KeyValue, engine: AsyncEngine) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._ended_tasks = ended_tasks
        self._engine = engine
        # A newer order kept for the task meanwhile has another try_time: a retry leaves it.
        self._kept = RetryOutbox(engine, pending_marks, identity=("task_id", "try_time"))

    async def mark(self, task_id: str, reason: str) -> None:
        """Marks the task ended and tells a running attempt to stop.

        `reason` is the end just committed; the mark written is the task's row's at the
        write (`end_mark`): a requeue committed since withdraws it instead.
        """
        await self._order(task_id, reason)

    async def mark_many(self, task_ids: Sequence[str], reason: str) -> None:
        """Marks the tasks (distinct) ended, as `mark` marks each, their writes under way together.

        Every entry's revision is read first, then every task's row in one query,
        then each mark written at its revision: per task, in `_write`'s order. A task
        whose entry changed meanwhile, or whose read failed, is ordered alone (`mark`),
        one whose write failed is kept for a retry, as `mark` would.
        """
        if not self._nc.is_connected or not task_ids:
            for task_id in task_ids:
                await self._order(task_id, reason)  # Kept: see _order.
            return
        revisions = await gather_bounded(
            [latest_revision(self._ended_tasks, task_id) for task_id in task_ids]
        )
        try:
            rows = await self._rows(task_ids)
        except (SQLAlchemyError, OSError) as error:
            log.warning(
                "reading %d ended tasks failed: %s; marking one at a time", len(task_ids), error
            )
            rows = {}
        alone: list[str] = []
        writes: list[tuple[str, str, int, dt.datetime | None]] = []
        for task_id, revision in zip(task_ids, revisions, strict=True):
            row = rows.get(task_id)
            if isinstance(revision, BaseException) or row is None:
                alone.append(task_id)  # _order keeps it, or finds it deleted.
            else:
                mark = end_mark(tasks_pb2.TaskStatus.Value(row.status), row.error_code)
                writes.append((task_id, mark, revision, row.try_time))
        written = await gather_bounded(
            [self._write_at(task_id, mark, revision) for task_id, mark, revision, _ in writes]
        )
        for (task_id, _, _, kept), landed in zip(writes, written, strict=True):
            if isinstance(landed, (*_NOT_WRITTEN, OSError)):
                log.warning(
                    "marking task %s ended (%s) failed: %s; retrying", task_id, reason, landed
                )
                await self._keep(task_id, reason)
            elif isinstance(landed, BaseException):
                raise landed
            elif not landed:
                alone.append(task_id)  # Another writer got there between the reads and the write.
            elif kept is not None:
                await self._settle(task_id, kept)
        for task_id in alone:
            await self._order(task_id, reason)

    async def _rows(self, task_ids: Sequence[str]) -> dict[str, Row[Any, Any, Any, Any]]:
        """The state of each of the tasks, and the order kept for it, by id; `_STATE_AND_KEPT`'s."""
        found: dict[str, Row[Any, Any, Any, Any]] = {}
        async with self._engine.connect() as connection:
            for start in range(0, len(task_ids), _READ_CHUNK):
                chunk = task_ids[start : start + _READ_CHUNK]
                query = _STATES_AND_KEPT.where(tasks.c.id.in_(chunk))
                found.update((str(row.id), row) for row in await connection.execute(query))
        return found

    async def withdraw(self, task_id: str) -> bool:
        """Removes the task's mark (it is queued again); False if kept for a retry, or ended.

        Until the withdrawal goes through, the task must not be published: agents
        would ack it unrun (`withdrawing`). One that ended again meanwhile is marked.
        """
        return await self._order(task_id, None) == ""

    async def withdrawing(self, task_ids: Collection[str]) -> set[str]:
        """Those of `task_ids` with an order kept: a stale mark of theirs may stand."""
        if not task_ids:
            return set()
        query = select(pending_marks.c.task_id).where(pending_marks.c.task_id.in_(task_ids))
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())

    async def retry_pending(self) -> int:
        """Makes up to a batch of kept orders again, least lately tried first; how many went.

        A round stops at the first that fails again (NATS is still away), which goes
        to the back (`retry_outbox`).
        """
        if not self._nc.is_connected:
            return 0
        done = await self._kept.retry(self._retry)
        if done:
            log.info("marked %d ended task(s) held back while NATS was unreachable", done)
        return done

    async def _order(self, task_id: str, reason: str | None) -> str | None:
        """Writes what the task's row says; the mark written ("" none), None if kept."""
        what = f"withdrawing the end mark of task {task_id}"
        if reason is not None:
            what = f"marking task {task_id} ended ({reason})"
        if not self._nc.is_connected:
            # A request now would wait for the reconnect, holding up the caller.
            log.warning("NATS is unreachable: %s is left for a retry", what)
            await self._keep(task_id, reason)
            return None
        try:
            written = await self._write(task_id)
        except (*_NOT_WRITTEN, SQLAlchemyError, OSError) as error:
            log.warning("%s failed: %s; retrying", what, error)
            await self._keep(task_id, reason)
            return None
        if written.kept is not None:
            await self._settle(task_id, written.kept)
        return written.mark

    async def _retry(self, row: RowMapping) -> bool:
        """Makes a kept order again; False if NATS did not take it."""
        try:
            await self._write(row["task_id"])
        except _NOT_WRITTEN as error:
            log.warning("marking task %s ended failed again: %s", row["task_id"], error)
            return False
        return True

    async def _write(self, task_id: str) -> _Written:
        """Makes the bucket say what the task's row says (`end_mark`); what it wrote.

        Storage errors, and NATS's, are raised; Contended if other writers kept
        changing the entry.
        """
        for _ in range(CAS_TRIES):
            # The revision first: a write since makes this one fail, and read both again.
            revision = await latest_revision(self._ended_tasks, task_id)
            async with self._engine.connect() as connection:
                row = (await connection.execute(_STATE_AND_KEPT, {"task_id": task_id})).first()
            if row is None:
                return _Written("", None)  # Deleted: nothing can order anything of it now.
            mark = end_mark(tasks_pb2.TaskStatus.Value(row.status), row.error_code)
            if await self._write_at(task_id, mark, revision):
                return _Written(mark, row.try_time)
        raise Contended(f"the end mark of task {task_id} kept changing")

    async def _write_at(self, task_id: str, mark: str, revision: int) -> bool:
        """Writes `mark` ("" removes it) if the entry is at `revision` still; whether it was."""
        if not mark:
            if revision:
                return await delete_at(self._ended_tasks, task_id, revision)
            return await delete_if_new(self._js, CANCEL_BUCKET, task_id)
        try:
            await self._ended_tasks.update(task_id, task_ends.mark(mark), last=revision)
        except KeyWrongLastSequenceError:
            return False
        await self._nc.publish(
            cancel_subject(task_id), queue_pb2.CancelNotice(task_id=task_id).SerializeToString()
        )
        return True

    async def _keep(self, task_id: str, reason: str | None) -> None:
        """Keeps the order for retry_pending, replacing an earlier one for the task."""
        row = {"task_id": task_id, "reason": reason}
        try:
            kept = await self._kept.keep(row, replacing=pending_marks.c.task_id == task_id)
        except (SQLAlchemyError, OSError) as error:
            log.error("keeping the end mark of task %s for a retry failed: %s", task_id, error)
            return
        if kept is Kept.CLASHED:
            log.warning("another replica kept an order for task %s's end mark at once", task_id)

    async def _settle(self, task_id: str, kept: dt.datetime) -> None:
        """Drops the order kept for the task as of the row read: the write made it.

        One kept since is left (its commit may have come after the read) for a round.
        """
        this_one = and_(pending_marks.c.task_id == task_id, pending_marks.c.try_time == kept)
        try:
            await self._kept.drop(this_one)
        except (SQLAlchemyError, OSError) as error:
            log.warning("dropping the kept end mark of task %s failed: %s", task_id, error)
