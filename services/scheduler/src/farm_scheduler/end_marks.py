"""Marks the tasks that end while work on them may still be out there, for agents and storage.

A cancelled task, and one failed by a delivery that never started it (its attempts
used up or its deadline passed, while an earlier, cut-off attempt may still run),
is put in the bucket CANCEL_BUCKET with the reason (`farm_core.task_ends`), and a
cancel notice stops an attempt still running where the notice reaches it. A task
that ends by its own attempt's report is not marked (that attempt is done) unless
the attempt's message was delivered again meanwhile (`AgentEvent.redelivered`, or
its final event reached JetStream late: farm_scheduler.events): the redelivery,
waiting while the attempt ran (farm_agent.work.holders), is acked unrun.

Best effort, retried: a mark NATS did not take is kept and tried again by the
republisher's rounds (`retry_pending`), the latest order for a task winning, until
this scheduler stops. The task's end stands in the database either way.
"""

import logging

import nats.errors
from nats.aio.client import Client
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_core import task_ends
from farm_core.queue import cancel_subject

log = logging.getLogger(__name__)

MAX_PENDING = 100_000
"""Orders kept for a retry at most; past it the oldest is dropped (and logged)."""


class EndMarks:
    """Writes and withdraws the marks of ended tasks; keeps the ones NATS refused for a retry."""

    def __init__(self, nc: Client, ended_tasks: KeyValue) -> None:
        self._nc = nc
        self._ended_tasks = ended_tasks
        # Task id → the reason to mark, or None to withdraw the mark.
        self._pending: dict[str, str | None] = {}

    @property
    def pending(self) -> int:
        """How many marks or withdrawals wait for a retry."""
        return len(self._pending)

    async def mark(self, task_id: str, reason: str) -> None:
        """Marks the task ended for `reason` and tells a running attempt to stop."""
        self._pending.pop(task_id, None)
        if not self._nc.is_connected:
            # A request now would wait for the reconnect, holding up the caller.
            log.warning("NATS is unreachable: task %s is marked ended (%s) later", task_id, reason)
            self._keep(task_id, reason)
            return
        try:
            await self._put(task_id, reason)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("marking task %s ended (%s) failed: %s; retrying", task_id, reason, error)
            self._keep(task_id, reason)

    async def withdraw(self, task_id: str) -> bool:
        """Removes the task's mark (it is queued again); False if kept for a retry.

        Until the withdrawal goes through, the task must not be published: agents
        would ack it unrun (`withdrawing`).
        """
        self._pending.pop(task_id, None)
        try:
            await self._ended_tasks.delete(task_id)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("withdrawing the end mark of task %s failed: %s; retrying", task_id, error)
            self._keep(task_id, None)
            return False
        return True

    def withdrawing(self, task_id: str) -> bool:
        """Whether the task's mark is still to be withdrawn."""
        return task_id in self._pending and self._pending[task_id] is None

    async def retry_pending(self) -> int:
        """Tries the kept marks and withdrawals again, oldest first; how many went through."""
        done = 0
        for task_id, reason in list(self._pending.items()):
            if not self._nc.is_connected:
                break
            try:
                if reason is None:
                    await self._ended_tasks.delete(task_id)
                else:
                    await self._put(task_id, reason)
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("marking task %s ended failed again: %s", task_id, error)
                break
            if self._pending.get(task_id, "") == reason:
                del self._pending[task_id]
            done += 1
        if done:
            log.info("marked %d ended task(s) held back while NATS was unreachable", done)
        return done

    async def _put(self, task_id: str, reason: str) -> None:
        await self._ended_tasks.put(task_id, task_ends.mark(reason))
        await self._nc.publish(
            cancel_subject(task_id), queue_pb2.CancelNotice(task_id=task_id).SerializeToString()
        )

    def _keep(self, task_id: str, reason: str | None) -> None:
        if len(self._pending) >= MAX_PENDING:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            log.error("too many ended tasks wait for a mark; task %s will not be marked", oldest)
        self._pending[task_id] = reason
