"""How a task's attempt ends: reported, then acked, retried or handed back as a wait.

`TaskAttempt` (attempt.py) decides when; this holds what each ending sends: the
event to the scheduler, the delivery's ack or nak, the metrics and the wait records.
"""

import asyncio
import datetime as dt
import logging
import random

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent import metrics
from farm_agent.errors import TaskFailure
from farm_agent.work.attempt_tools import AttemptTools
from farm_agent.work.delivery import Delivery, DeliveryOutcome
from farm_agent.work.events import ReportFailed
from farm_agent.work.retries import Backoff, Retry, plan_after_failure
from farm_agent.work.waits import DeliveryWaits, WaitReason

log = logging.getLogger(__name__)


_ENDS = frozenset(
    {tasks_pb2.TASK_STATUS_SUCCEEDED, tasks_pb2.TASK_STATUS_FAILED, tasks_pb2.TASK_STATUS_CANCELLED}
)
"""The statuses that end a task (the scheduler marks it ended on a flagged one)."""


def utcnow() -> dt.datetime:
    """Now, in UTC."""
    return dt.datetime.now(dt.UTC)


class AttemptEnds:
    """The endings of one delivery of a task: its events, ack or nak, and wait records."""

    def __init__(
        self,
        tools: AttemptTools,
        item: queue_pb2.WorkItem,
        delivery: Delivery,
        *,
        deliveries: int,
        wait_key: str,
    ) -> None:
        self._tools = tools
        self.item = item
        self._delivery = delivery
        self.deliveries = deliveries
        # Until the waits before it are known, every delivery counts as an attempt.
        self.attempt = deliveries
        # Read once for the whole delivery: its checks and its hand-back.
        self.waits = DeliveryWaits(tools.bookkeeping.waits, wait_key, deliveries)
        # The RUNNING event that says the attempt waits for storage, sent once.
        self._storage_note: asyncio.Task[None] | None = None
        # Its final event went out flagged `redelivered`: the scheduler marks the task
        # ended, and a redelivery here waits for that mark (endings.py).
        self.end_mark_due = False

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self.item.task_id

    async def succeeded(self, result: tasks_pb2.TaskResult) -> None:
        try:
            await self.report(tasks_pb2.TASK_STATUS_SUCCEEDED, result=result)
        except TaskFailure as failure:
            await self.give_up(failure)
            return
        await self._delivery.ack(DeliveryOutcome.SUCCEEDED)
        log.info(
            "task %s succeeded in %.1f s with %d artifact(s)",
            self.task_id,
            self._delivery.elapsed_seconds(),
            len(result.artifacts),
        )
        await self.forget_waits()

    async def after_failure(
        self,
        failure: TaskFailure,
        max_attempts: int,
        deadline: dt.datetime | None,
        *,
        cut_short_by_deadline: bool,
    ) -> None:
        """Retries the task after a backoff while it may, else fails it."""
        metrics.errors_total.labels(code=failure.code.value).inc()
        settings = self._tools.settings
        plan = plan_after_failure(
            failure,
            self.attempt,
            max_attempts,
            utcnow(),
            deadline,
            Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
            random.random(),
            cut_short_by_deadline=cut_short_by_deadline,
        )
        if not isinstance(plan, Retry):
            await self.give_up(plan.failure, counted=True)
            return
        log.warning(
            "task %s attempt %d of %d failed (%s); retrying in %.1f s",
            self.task_id,
            self.attempt,
            max_attempts,
            failure,
            plan.delay_seconds,
        )
        await self.report(
            tasks_pb2.TASK_STATUS_QUEUED, error=failure.to_proto(), retry_time=plan.retry_time
        )
        # Before the nak, so the retry's delivery knows this attempt has ended (holders.py).
        await self.waits.add_retry()
        await self._delivery.hand_back_after(plan.delay_seconds, DeliveryOutcome.RETRIED)

    async def give_up(self, failure: TaskFailure, *, counted: bool = False) -> None:
        if not counted:
            metrics.errors_total.labels(code=failure.code.value).inc()
        log.info("task %s failed: %s", self.task_id, failure)
        await self.report(tasks_pb2.TASK_STATUS_FAILED, error=failure.to_proto())
        await self._delivery.ack(DeliveryOutcome.FAILED)
        await self.forget_waits()

    async def hand_back_as_wait(
        self, reason: WaitReason, delay: float, deadline: dt.datetime | None
    ) -> None:
        """Hands the task back to be offered again after `delay`, without using an attempt."""
        if deadline is not None:
            # Back by its deadline at the latest, to be failed then rather than later.
            delay = min(delay, max(0.0, (deadline - utcnow()).total_seconds()))
        metrics.task_waits_total.labels(reason=reason.value).inc()
        log.debug("task %s waits %.2f s (%s)", self.task_id, delay, reason.value)
        await self.waits.add_wait()
        await self._delivery.hand_back_after(delay, DeliveryOutcome.WAITED)

    def note_storage_wait(self, why: str) -> None:
        """Tells the user (Task.status_message) and the log, once, that storage holds the task up.

        An upload retried through a long outage looked like a hang: the task stayed
        RUNNING with no sign why.
        """
        if self._storage_note is not None:
            return
        note = f"waiting for storage: {why}; retrying"
        log.warning(
            "task %s attempt %d is %s until storage answers (at most %g s an upload, "
            "FARM_AGENT_UPLOAD_OUTAGE_SECONDS)",
            self.task_id,
            self.attempt,
            note,
            self._tools.settings.upload_outage_seconds,
        )
        self._storage_note = asyncio.create_task(self._send_note(note))

    async def _send_note(self, note: str) -> None:
        try:
            await self.report(tasks_pb2.TASK_STATUS_RUNNING, status_message=note)
        except ReportFailed as error:
            # Only the note is lost: the upload goes on.
            log.warning("task %s: the note %r was not sent: %s", self.task_id, note, error)

    async def report(
        self,
        status: "tasks_pb2.TaskStatus.ValueType",
        *,
        result: tasks_pb2.TaskResult | None = None,
        error: tasks_pb2.TaskError | None = None,
        retry_time: dt.datetime | None = None,
        status_message: str = "",
    ) -> None:
        # The scheduler marks a task so ended, so its waiting redelivery is acked unrun.
        redelivered = self._delivery.may_have_lapsed()
        await self._tools.reporting.reporter.report(
            self.task_id,
            status,
            self.attempt,
            grant=self.item.upload_grant,
            result=result,
            error=error,
            retry_time=retry_time,
            redelivered=redelivered,
            status_message=status_message,
        )
        if redelivered and status in _ENDS:
            self.end_mark_due = True

    async def forget_waits(self) -> None:
        if self.attempt < self.deliveries:
            await self.waits.forget()
