"""One delivery of a task, from checks to ack, or to a hand-back for a retry or a wait.

Checks (deadline, cancel, attempts left), the tenant's running limit, the host's
breaker and limits, the browser, storage, the event, then ack. A delivery is an
attempt once the agent reports RUNNING; one handed back before (tenant busy,
breaker open, host busy, agent draining) is a wait and does not count.
"""

import asyncio
import datetime as dt
import enum
import logging
import random
import time
from collections.abc import Callable
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
from farm_agent.browser.actions import Capture
from farm_agent.errors import TaskFailure
from farm_agent.kv import host_key, tenant_key
from farm_agent.limits.breakers import BreakerBoard
from farm_agent.limits.circuit import Admission, Outcome, outcome_of
from farm_agent.limits.leases import Lease, SlotLimiter
from farm_agent.limits.slots import SlotLimits
from farm_agent.settings import AgentSettings
from farm_agent.work.events import EventReporter, ReportFailed
from farm_agent.work.retries import (
    Backoff,
    Retry,
    attempt_timeout_ms,
    deadline_of,
    deadline_passed,
    max_attempts_of,
    plan_after_failure,
)
from farm_agent.work.uploader import ArtifactUploader
from farm_agent.work.waits import WaitLedger, wait_key
from farm_core.task_defaults import DEFAULT_TIMEOUT_MS
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

# A trial is given up for lost (its agent died) after its time limit and this margin.
TRIAL_MARGIN_SECONDS = 10.0


class SpecRunner(Protocol):
    """Runs a task spec and returns what it captured (BrowserSpecRunner does it in Chromium)."""

    async def run(self, spec: tasks_pb2.TaskSpec) -> Capture:
        """Runs `spec` within its timeoutMs; raises TaskFailure."""
        ...


class StopReason(enum.Enum):
    """Why a running attempt is stopped before it ends."""

    CANCELLED = "cancelled by the user"
    SHUTDOWN = "the agent is shutting down"


class WaitReason(enum.StrEnum):
    """Why a delivery was handed back without using an attempt."""

    BREAKER = "breaker_open"
    HOST_BUSY = "host_limit"
    TENANT_BUSY = "tenant_limit"
    DRAINING = "draining"


@dataclass(frozen=True)
class AttemptTools:
    """What every attempt uses: browser, storage, events, the farm-wide buckets, settings."""

    runner: SpecRunner
    uploader: ArtifactUploader
    reporter: EventReporter
    cancelled_tasks: KeyValue
    breakers: BreakerBoard
    host_limits: SlotLimiter
    tenant_limits: SlotLimiter
    waits: WaitLedger
    settings: AgentSettings
    # Told that the message on a subject comes back after a delay, so it is fetched then.
    expect_redelivery: Callable[[str, float], None]


class TaskAttempt:
    """Handles one delivered WorkItem from start to ack, or to a nak for a retry or a wait."""

    def __init__(self, message: Msg, tools: AttemptTools) -> None:
        self._message = message
        self._tools = tools
        self._started_at = time.monotonic()
        self._stop_reason: StopReason | None = None
        self._work: asyncio.Task[tasks_pb2.TaskResult | None] | None = None
        self._running = False
        self._cut_short_by_deadline = False
        self._finished = False
        self._wait_key = ""
        self.deliveries = message.metadata.num_delivered
        self.attempt = self.deliveries
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
        """Stops the attempt's work; it then reports or hands the task back."""
        if self._stop_reason is None:
            self._stop_reason = reason
            if self._work is not None:
                self._work.cancel()

    async def run(self) -> None:
        """Runs the delivery to its end: acked, or nakked so that the task comes again."""
        if not self.task_id:
            await self._message.term()
            return
        keep_alive = asyncio.create_task(self._keep_alive())
        try:
            await self._run()
        except ReportFailed as error:
            log.warning("%s; task %s will be redelivered", error, self.task_id)
            await self._finish("requeued", delay=self._tools.settings.retry_delay_seconds)
        finally:
            keep_alive.cancel()

    async def _run(self) -> None:
        spec = self.item.spec
        deadline = deadline_of(spec)
        max_attempts = max_attempts_of(spec)
        self._wait_key = wait_key(self.task_id, self._message)
        self.attempt = await self._tools.waits.attempt_number(self._wait_key, self.deliveries)
        now = _utcnow()
        if deadline is not None and now >= deadline:
            await self._give_up(deadline_passed(deadline, now))
            return
        if await self._cancelled_before_start():
            log.info("task %s was cancelled before it started", self.task_id)
            await self._report(tasks_pb2.TASK_STATUS_CANCELLED)
            await self._finish("cancelled")
            return
        if self.attempt > max_attempts:
            await self._give_up(
                TaskFailure(
                    ErrorCode.ATTEMPTS_EXHAUSTED,
                    f"maxAttempts is {max_attempts} and attempt {max_attempts} ended without a "
                    "result (its agent died, was stopped or lost its connection)",
                )
            )
            return
        if self._stop_reason is StopReason.SHUTDOWN:
            await self._hand_back(WaitReason.DRAINING, 0, deadline)
            return
        self._work = asyncio.create_task(self._go(spec, deadline), name=f"task-{self.task_id}")
        if self._stop_reason is not None:
            self._work.cancel()
        try:
            result = await self._work
        except asyncio.CancelledError:
            if self._stop_reason is None:
                raise
            await self._stopped(deadline)
            return
        except TaskFailure as failure:
            await self._after_failure(failure, max_attempts, deadline)
            return
        if result is None:
            return
        try:
            await self._report(tasks_pb2.TASK_STATUS_SUCCEEDED, result=result)
        except TaskFailure as failure:
            await self._give_up(failure)
            return
        await self._finish("succeeded")
        log.info(
            "task %s succeeded in %.1f s with %d artifact(s)",
            self.task_id,
            time.monotonic() - self._started_at,
            len(result.artifacts),
        )
        await self._forget_waits()

    async def _go(
        self, spec: tasks_pb2.TaskSpec, deadline: dt.datetime | None
    ) -> tasks_pb2.TaskResult | None:
        """Runs the spec within its tenant's running limit; None if handed back to wait.

        The tenant's slot is taken first, so a tenant's queued tasks use no host's
        rate tokens, and is held until the artifacts are stored.
        """
        lease = await self._tenant_lease()
        if isinstance(lease, float):
            # Leases end as tasks finish; spread the waiting tasks' returns.
            delay = max(lease, self._tools.settings.tenant_wait_seconds * random.uniform(1, 1.5))
            await self._hand_back(WaitReason.TENANT_BUSY, delay, deadline)
            return None
        try:
            return await self._go_on_host(spec, deadline)
        finally:
            if lease is not None:
                await lease.release()

    async def _go_on_host(
        self, spec: tasks_pb2.TaskSpec, deadline: dt.datetime | None
    ) -> tasks_pb2.TaskResult | None:
        """Runs the spec past the host's breaker and limits and stores its artifacts.

        None when the task was handed back to wait instead.
        """
        host = host_key(spec.url)
        timeout_ms = attempt_timeout_ms(spec, _utcnow())
        self._cut_short_by_deadline = timeout_ms < (spec.timeout_ms or DEFAULT_TIMEOUT_MS)
        admission = await self._admit(host, timeout_ms)
        if not admission.allowed:
            if self._tools.settings.breaker_mode == "wait":
                # Spread the waiting tasks, so they do not all come back at the same instant.
                delay = admission.retry_after_seconds * random.uniform(1.0, 1.25)
                await self._hand_back(WaitReason.BREAKER, delay, deadline)
                return None
            raise TaskFailure(
                ErrorCode.CIRCUIT_OPEN,
                f"url: the circuit breaker of {host} is open after repeated failures; a trial "
                f"task may try it in {admission.retry_after_seconds:.1f} s",
            )
        outcome = Outcome.NEUTRAL
        try:
            lease = await self._lease(host)
            if isinstance(lease, float):
                await self._hand_back(WaitReason.HOST_BUSY, lease, deadline)
                return None
            try:
                await self._report(tasks_pb2.TASK_STATUS_RUNNING)
                self._running = True
                # The host only: a URL's path and query may carry the tenant's secrets.
                log.info("task %s attempt %d running on %s", self.task_id, self.attempt, host)
                capture = await self._browse(spec, timeout_ms)
                outcome = Outcome.SUCCESS
                self._log_blocked(capture)
            except TaskFailure as failure:
                outcome = outcome_of(failure)
                raise
            finally:
                if lease is not None:
                    await lease.release()
        finally:
            if host:
                await self._tools.breakers.record(host, admission, outcome)
        for artifact in capture.artifacts:
            ref = await self._tools.uploader.upload(self.item.tenant, self.task_id, artifact)
            capture.result.artifacts.append(ref)
        return capture.result

    def _log_blocked(self, capture: Capture) -> None:
        """Logs the page's requests the egress guard refused, which did not fail the task."""
        blocked = capture.result.blocked_requests
        if blocked:
            log.info(
                "task %s: the egress guard refused %d of the page's requests: %s",
                self.task_id,
                len(blocked),
                "; ".join(f"{request.target} ({request.message})" for request in blocked),
            )

    async def _admit(self, host: str, timeout_ms: int) -> Admission:
        if not host:
            return Admission(allowed=True)
        trial_seconds = timeout_ms / 1000 + self._tools.settings.close_timeout_seconds
        return await self._tools.breakers.admit(host, trial_seconds + TRIAL_MARGIN_SECONDS)

    async def _lease(self, host: str) -> Lease | float | None:
        """A lease on the host's slots; a float is how long to wait; None: no host to limit."""
        if not host:
            return None
        settings = self._tools.settings
        limits = SlotLimits(
            settings.host_max_concurrency, settings.host_max_rate, settings.host_lease_seconds
        )
        return await self._tools.host_limits.acquire(host, limits, settings.host_wait_seconds)

    async def _tenant_lease(self) -> Lease | float | None:
        """One of the tenant's running slots; a float: it runs its limit; None: no limit."""
        tenant, limit = tenant_key(self.item.tenant), self.item.tenant_max_running
        if not tenant or limit <= 0:
            return None
        limits = SlotLimits(limit, None, self._tools.settings.tenant_lease_seconds)
        # No waiting in the agent: a tenant's backlog must not fill the agents' places.
        return await self._tools.tenant_limits.acquire(tenant, limits, 0)

    async def _browse(self, spec: tasks_pb2.TaskSpec, timeout_ms: int) -> Capture:
        """Runs the spec in the browser within the attempt's time limit."""
        if self._cut_short_by_deadline:
            limited = tasks_pb2.TaskSpec()
            limited.CopyFrom(spec)
            limited.timeout_ms = timeout_ms
            spec = limited
        try:
            return await self._tools.runner.run(spec)
        except TaskFailure:
            raise
        except Exception as error:
            log.exception("task %s failed unexpectedly", self.task_id)
            raise TaskFailure(ErrorCode.INTERNAL, f"{type(error).__name__}: {error}") from error

    async def _stopped(self, deadline: dt.datetime | None) -> None:
        if self._stop_reason is StopReason.CANCELLED:
            log.info("task %s stopped: cancelled", self.task_id)
            await self._report(tasks_pb2.TASK_STATUS_CANCELLED)
            await self._finish("cancelled")
        elif self._running:
            log.info("task %s handed back: the agent is shutting down", self.task_id)
            await self._finish("requeued", delay=0)
        else:
            await self._hand_back(WaitReason.DRAINING, 0, deadline)

    async def _after_failure(
        self, failure: TaskFailure, max_attempts: int, deadline: dt.datetime | None
    ) -> None:
        """Retries the task after a backoff while it may, else fails it."""
        metrics.errors_total.labels(code=failure.code.value).inc()
        settings = self._tools.settings
        plan = plan_after_failure(
            failure,
            self.attempt,
            max_attempts,
            _utcnow(),
            deadline,
            Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
            random.random(),
            cut_short_by_deadline=self._cut_short_by_deadline,
        )
        if not isinstance(plan, Retry):
            await self._give_up(plan.failure, counted=True)
            return
        log.warning(
            "task %s attempt %d of %d failed (%s); retrying in %.1f s",
            self.task_id,
            self.attempt,
            max_attempts,
            failure,
            plan.delay_seconds,
        )
        await self._report(
            tasks_pb2.TASK_STATUS_QUEUED, error=failure.to_proto(), retry_time=plan.retry_time
        )
        await self._finish("retried", delay=plan.delay_seconds)

    async def _give_up(self, failure: TaskFailure, *, counted: bool = False) -> None:
        if not counted:
            metrics.errors_total.labels(code=failure.code.value).inc()
        log.info("task %s failed: %s", self.task_id, failure)
        await self._report(tasks_pb2.TASK_STATUS_FAILED, error=failure.to_proto())
        await self._finish("failed")
        await self._forget_waits()

    async def _hand_back(
        self, reason: WaitReason, delay: float, deadline: dt.datetime | None
    ) -> None:
        """Hands the task back to be offered again after `delay`, without using an attempt."""
        if deadline is not None:
            # Back by its deadline at the latest, to be failed then rather than later.
            delay = min(delay, max(0.0, (deadline - _utcnow()).total_seconds()))
        metrics.task_waits_total.labels(reason=reason.value).inc()
        log.debug("task %s waits %.2f s (%s)", self.task_id, delay, reason.value)
        await self._tools.waits.add_wait(self._wait_key)
        await self._finish("waited", delay=delay)

    async def _report(
        self,
        status: "tasks_pb2.TaskStatus.ValueType",
        *,
        result: tasks_pb2.TaskResult | None = None,
        error: tasks_pb2.TaskError | None = None,
        retry_time: dt.datetime | None = None,
    ) -> None:
        await self._tools.reporter.report(
            self.task_id, status, self.attempt, result=result, error=error, retry_time=retry_time
        )

    async def _finish(self, status: str, *, delay: float | None = None) -> None:
        """Acks the message (delay None) or naks it for redelivery after `delay` seconds."""
        if self._finished:
            return
        self._finished = True
        try:
            if delay is None:
                await self._message.ack()
            else:
                await self._message.nak(delay=delay or None)
                self._tools.expect_redelivery(self._message.subject, delay)
        except nats.errors.Error as error:
            # The ack wait will expire and the task come again; its effects are idempotent.
            verb = "ack" if delay is None else "nak"
            log.warning("could not %s task %s: %s", verb, self.task_id, error)
        metrics.tasks_total.labels(status=status).inc()
        metrics.task_duration_seconds.observe(time.monotonic() - self._started_at)

    async def _forget_waits(self) -> None:
        if self.attempt < self.deliveries:
            await self._tools.waits.forget(self._wait_key)

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
            await asyncio.sleep(self._tools.settings.in_progress_seconds)
            try:
                await self._message.in_progress()
            except nats.errors.Error as error:
                log.warning("in-progress ack of task %s failed: %s", self.task_id, error)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
