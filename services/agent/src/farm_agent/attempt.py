"""One delivery of a task: check for a cancel, run it, store its artifacts, report, then ack."""

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent import metrics
from farm_agent.actions import Capture
from farm_agent.errors import RETRYABLE_CODES, ErrorCode, TaskFailure
from farm_agent.events import EventReporter, ReportFailed
from farm_agent.uploader import ArtifactUploader

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3


class Runner(Protocol):
    """Runs a task spec in a browser."""

    async def run(self, spec: tasks_pb2.TaskSpec) -> Capture:
        """Runs `spec`; raises TaskFailure."""
        ...


class StopReason(enum.Enum):
    """Why a running attempt is stopped before it ends."""

    CANCELLED = "cancelled by the user"
    SHUTDOWN = "the agent is shutting down"


@dataclass(frozen=True)
class AttemptTools:
    """What every attempt uses: the browser runner, storage, events, the cancel bucket."""

    runner: Runner
    uploader: ArtifactUploader
    reporter: EventReporter
    cancelled_tasks: KeyValue
    in_progress_seconds: float
    retry_delay_seconds: float
    max_deliver: int


class TaskAttempt:
    """Handles one delivered WorkItem from start to ack (or nak for redelivery)."""

    def __init__(self, message: Msg, tools: AttemptTools) -> None:
        self._message = message
        self._tools = tools
        self._started = time.monotonic()
        self._stop_reason: StopReason | None = None
        self._work: asyncio.Task[tasks_pb2.TaskResult] | None = None
        self.attempt = message.metadata.num_delivered
        self.item = queue_pb2.WorkItem()
        try:
            self.item.ParseFromString(message.data)
        except DecodeError as error:
            log.error("dropping a message that is not a WorkItem: %s", error)

    @property
    def task_id(self) -> str:
        """The task's id ("" when the message held no WorkItem)."""
        return self.item.task_id

    def stop(self, reason: StopReason) -> None:
        """Stops the attempt's browser work; it then reports or hands the task back."""
        if self._stop_reason is None:
            self._stop_reason = reason
            if self._work is not None:
                self._work.cancel()

    async def run(self) -> None:
        """Runs the attempt to its end: acked, or nakked so that the task comes again."""
        if not self.task_id:
            await self._message.term()
            return
        try:
            await self._run()
        except ReportFailed as error:
            log.warning("%s; task %s will be redelivered", error, self.task_id)
            await self._finish("requeued", delay=self._tools.retry_delay_seconds)

    async def _run(self) -> None:
        spec = self.item.spec
        max_attempts = spec.max_attempts or DEFAULT_MAX_ATTEMPTS
        if await self._cancelled_before_start():
            log.info("task %s was cancelled before it started", self.task_id)
            await self._report(tasks_pb2.TASK_STATUS_CANCELLED)
            await self._finish("cancelled")
            return
        if self.attempt > max_attempts:
            failure = TaskFailure(
                ErrorCode.ATTEMPTS_EXHAUSTED,
                f"the task was delivered {self.attempt} times; maxAttempts is {max_attempts}",
            )
            await self._fail(failure)
            return
        if self._stop_reason is StopReason.SHUTDOWN:
            await self._stopped()
            return
        await self._report(tasks_pb2.TASK_STATUS_RUNNING)
        self._work = asyncio.create_task(self._produce(), name=f"task-{self.task_id}")
        if self._stop_reason is not None:
            self._work.cancel()
        keep_alive = asyncio.create_task(self._keep_alive())
        try:
            result = await self._work
        except asyncio.CancelledError:
            if self._stop_reason is None:
                raise
            await self._stopped()
            return
        except TaskFailure as failure:
            retry = failure.code in RETRYABLE_CODES and self.attempt < min(
                max_attempts, self._tools.max_deliver
            )
            await self._fail(failure, retry=retry)
            return
        finally:
            keep_alive.cancel()
        try:
            await self._report(tasks_pb2.TASK_STATUS_SUCCEEDED, result=result)
        except TaskFailure as failure:
            await self._fail(failure)
            return
        await self._finish("succeeded")

    async def _produce(self) -> tasks_pb2.TaskResult:
        """Runs the spec and stores its artifacts; the result then names them."""
        try:
            capture = await self._tools.runner.run(self.item.spec)
        except TaskFailure:
            raise
        except Exception as error:
            log.exception("task %s failed unexpectedly", self.task_id)
            raise TaskFailure(ErrorCode.INTERNAL, f"{type(error).__name__}: {error}") from error
        for artifact in capture.artifacts:
            ref = await self._tools.uploader.upload(self.item.tenant, self.task_id, artifact)
            capture.result.artifacts.append(ref)
        return capture.result

    async def _stopped(self) -> None:
        if self._stop_reason is StopReason.CANCELLED:
            log.info("task %s stopped: cancelled", self.task_id)
            await self._report(tasks_pb2.TASK_STATUS_CANCELLED)
            await self._finish("cancelled")
        else:
            log.info("task %s handed back: the agent is shutting down", self.task_id)
            await self._finish("requeued", delay=0)

    async def _fail(self, failure: TaskFailure, *, retry: bool = False) -> None:
        metrics.errors_total.labels(code=failure.code.value).inc()
        if retry:
            log.warning(
                "task %s attempt %d failed (%s); it will be retried",
                self.task_id,
                self.attempt,
                failure,
            )
            await self._finish("retried", delay=self._tools.retry_delay_seconds)
            return
        log.info("task %s failed: %s", self.task_id, failure)
        await self._report(tasks_pb2.TASK_STATUS_FAILED, error=failure.to_proto())
        await self._finish("failed")

    async def _report(
        self,
        status: "tasks_pb2.TaskStatus.ValueType",
        *,
        result: tasks_pb2.TaskResult | None = None,
        error: tasks_pb2.TaskError | None = None,
    ) -> None:
        await self._tools.reporter.report(
            self.task_id, status, self.attempt, result=result, error=error
        )

    async def _finish(self, status: str, *, delay: float | None = None) -> None:
        """Acks the message (delay None) or naks it for redelivery after `delay` seconds."""
        try:
            if delay is None:
                await self._message.ack()
            else:
                await self._message.nak(delay=delay or None)
        except nats.errors.Error as error:
            # The ack wait will expire and the task come again; its effects are idempotent.
            verb = "ack" if delay is None else "nak"
            log.warning("could not %s task %s: %s", verb, self.task_id, error)
        metrics.tasks_total.labels(status=status).inc()
        metrics.task_duration_seconds.observe(time.monotonic() - self._started)

    async def _cancelled_before_start(self) -> bool:
        if self._stop_reason is StopReason.CANCELLED:
            return True
        try:
            await self._tools.cancelled_tasks.get(self.task_id)
        except KeyNotFoundError:
            return False
        except (nats.errors.Error, TimeoutError) as error:
            # A cancel that arrives later still stops the task through control.cancel.
            log.warning("could not check whether task %s is cancelled: %s", self.task_id, error)
            return False
        return True

    async def _keep_alive(self) -> None:
        """Tells JetStream the task is still being worked on, so it is not redelivered."""
        while True:
            await asyncio.sleep(self._tools.in_progress_seconds)
            try:
                await self._message.in_progress()
            except nats.errors.Error as error:
                log.warning("in-progress ack of task %s failed: %s", self.task_id, error)
