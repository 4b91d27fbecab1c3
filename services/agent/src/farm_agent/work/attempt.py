"""One delivery of a task, from checks to ack, or to a hand-back for a retry or a wait.

Checks (deadline, cancel, attempts left), the tenant's running limit, the host's
breaker and limits, the browser, storage, the event, then ack. A delivery is an
attempt once the agent reports RUNNING; one handed back before (tenant busy,
breaker open, host busy, agent draining) is a wait and does not count.

The steps, each inside the one before: `run` (keeps the delivery in progress) →
`_run_checked` (deadline, cancel, attempts; an earlier attempt still running or a route
claimed elsewhere, start_checks.py) → `_run_within_tenant_limit` →
`_run_on_host` (breaker, host slot) → `_browse`, then `_stored_while_released`
(artifacts stored while the host slot is given back). How an attempt ends (reported,
acked, retried or handed back as a wait) is in attempt_ends.py.
"""

import asyncio
import datetime as dt
import enum
import logging
import random

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.errors import TaskFailure
from farm_agent.kv import host_key, origin_key
from farm_agent.limits.circuit import Admission, Outcome, outcome_of
from farm_agent.limits.leases import Busy, Lease, Unreadable
from farm_agent.traces import attempt_span
from farm_agent.work.attempt_ends import AttemptEnds, utcnow
from farm_agent.work.attempt_tools import AttemptTools
from farm_agent.work.delivery import Delivery, DeliveryOutcome
from farm_agent.work.events import ReportFailed, log_blocked
from farm_agent.work.lapses import in_progress_interval, lapse_bound
from farm_agent.work.retries import (
    attempt_timeout_ms,
    deadline_of,
    deadline_passed,
    max_attempts_of,
)
from farm_agent.work.start_checks import held_elsewhere, limit_unknown, taken_elsewhere
from farm_agent.work.uploader import ArtifactOwner
from farm_agent.work.waits import WaitReason, wait_key
from farm_core import task_ends
from farm_core.backoff import doubling_delay
from farm_core.breakers import breaker_origin
from farm_core.task_defaults import DEFAULT_TIMEOUT_MS
from farm_core.task_errors import ErrorCode
from farm_core.tracing import tracer

log = logging.getLogger(__name__)


class StopReason(enum.Enum):
    """Why a running attempt is stopped before it ends."""

    CANCELLED = "cancelled by the user"
    SHUTDOWN = "the agent is shutting down"


class TaskAttempt:
    """Handles one delivered WorkItem from start to ack, or to a nak for a retry or a wait."""

    def __init__(self, message: Msg, tools: AttemptTools) -> None:
        self._message = message
        self._tools = tools
        self._stop_reason: StopReason | None = None
        self._work: asyncio.Task[tasks_pb2.TaskResult | None] | None = None
        self._running = False
        self._cut_short_by_deadline = False
        self.item = queue_pb2.WorkItem()
        try:
            self.item.ParseFromString(message.data)
        except DecodeError as error:
            log.error("dropping a message that is not a WorkItem: %s", error)
        settings = tools.settings
        self._in_progress_seconds = in_progress_interval(
            settings.ack_wait_seconds, settings.in_progress_seconds
        )
        bound = lapse_bound(settings.ack_wait_seconds, settings.in_progress_seconds)
        self._delivery = Delivery(
            message,
            self.task_id,
            tools.bookkeeping.expect_redelivery,
            connected=tools.bookkeeping.nats_connected,
            lapse_after_seconds=bound,
            attempt_of=lambda: self.attempt,
        )
        self._ends = AttemptEnds(
            tools,
            self.item,
            self._delivery,
            deliveries=message.metadata.num_delivered,
            wait_key=wait_key(self.task_id, message),
        )
        self._received = utcnow()

    @property
    def attempt(self) -> int:
        """The attempt's number (deliveries minus the waits before it, once known)."""
        return self._ends.attempt

    @property
    def end_mark_due(self) -> bool:
        """Whether its delivery lapsed and its end went out: the scheduler marks the task."""
        return self._ends.end_mark_due

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
            await self._delivery.refuse()
            return
        async with self._delivery.kept_in_progress(self._in_progress_seconds):
            try:
                with attempt_span(self._message, self.task_id, self._received) as span:
                    span.set_attribute("farm.agent_id", self._tools.settings.id)
                    try:
                        await self._run_checked()
                    finally:
                        span.set_attribute("farm.attempt", self.attempt)
            except ReportFailed as error:
                log.warning("%s; task %s will be redelivered", error, self.task_id)
                delay = self._tools.settings.retry_delay_seconds
                await self._delivery.hand_back_after(delay, DeliveryOutcome.REQUEUED)

    async def _run_checked(self) -> None:
        """Runs the task unless a check ends it first, and settles how the run ended."""
        spec = self.item.spec
        deadline = deadline_of(spec)
        max_attempts = max_attempts_of(spec)
        ends = self._ends
        # Both are read for nearly every delivery: one round trip's wait, not two, while
        # the delivery holds one of the agent's places (a held backlog comes back often).
        ends.attempt, ended = await asyncio.gather(
            ends.waits.attempt_number(), self._tools.bookkeeping.end_reason(self.task_id)
        )
        if await self._ended_before_start(deadline, max_attempts, ended):
            return
        self._work = asyncio.create_task(
            self._run_within_tenant_limit(spec, deadline), name=f"task-{self.task_id}"
        )
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
            await self._ends.after_failure(
                failure, max_attempts, deadline, cut_short_by_deadline=self._cut_short_by_deadline
            )
            return
        if result is not None:
            await self._ends.succeeded(result)

    async def _ended_before_start(
        self, deadline: dt.datetime | None, max_attempts: int, ended: str | None
    ) -> bool:
        """Ends or hands back a task that must not start now; False when it may start.

        `ended`: why the scheduler marked the task ended (None: it did not).
        """
        now = utcnow()
        if deadline is not None and now >= deadline:
            await self._ends.give_up(deadline_passed(deadline, now))
        elif (reason := self._end_reason_before_start(ended)) is not None:
            await self._ack_ended(reason)
        else:
            # Held first: an attempt past maxAttempts must not fail a task that still runs.
            return await held_elsewhere(
                self._tools, self.task_id, self._ends, deadline
            ) or await self._not_to_start_here(deadline, max_attempts)
        return True

    async def _not_to_start_here(self, deadline: dt.datetime | None, max_attempts: int) -> bool:
        """Ends or hands back a task out of attempts, on a draining agent, or routed away."""
        if self.attempt > max_attempts:
            await self._ends.give_up(
                TaskFailure(
                    ErrorCode.ATTEMPTS_EXHAUSTED,
                    f"maxAttempts is {max_attempts} and attempt {max_attempts} ended without a "
                    "result (its agent died, was stopped or lost its connection)",
                )
            )
        elif self._stop_reason is StopReason.SHUTDOWN:
            await self._ends.hand_back_as_wait(WaitReason.DRAINING, 0, deadline)
        else:
            return await taken_elsewhere(
                self._tools, self.item, self._ends, self._delivery, deadline, max_attempts
            )
        return True

    async def _run_within_tenant_limit(
        self, spec: tasks_pb2.TaskSpec, deadline: dt.datetime | None
    ) -> tasks_pb2.TaskResult | None:
        """Runs the spec within its tenant's running limit; None if handed back to wait.

        The tenant's slot is taken first, so a tenant's queued tasks use no host's
        rate tokens, and is held until the artifacts are stored.
        """
        slot = await self._tools.limits.tenant_slot(self.item.tenant, self.item.tenant_max_running)
        if isinstance(slot, Unreadable):
            raise limit_unknown("tenant", f"the running limit of tenant {self.item.tenant}", slot)
        if isinstance(slot, Busy):
            # Leases end as tasks finish; spread the waiting tasks' returns. JetStream
            # offers handed-back messages before new ones, so a held backlog coming back
            # at a fixed pace would keep other tenants' tasks behind it from ever being
            # fetched: each further hand-back of this task waits twice as long.
            settings = self._tools.settings
            wait = doubling_delay(
                settings.tenant_wait_seconds,
                settings.tenant_wait_max_seconds,
                self._message.metadata.num_delivered,
            )
            spread = wait * random.uniform(1, 1.5)
            delay = max(slot.retry_after_seconds, spread)
            await self._ends.hand_back_as_wait(WaitReason.TENANT_BUSY, delay, deadline)
            return None
        try:
            return await self._run_on_host(spec, deadline)
        finally:
            if slot is not None:
                await slot.release()

    async def _run_on_host(
        self, spec: tasks_pb2.TaskSpec, deadline: dt.datetime | None
    ) -> tasks_pb2.TaskResult | None:
        """Runs the spec past the host's breaker and limits and stores its artifacts.

        None when the task was handed back to wait instead.
        """
        # A tenant's own breaker: another tenant's failures there do not hold its tasks.
        host, origin = host_key(spec.url), origin_key(spec.url, self.item.tenant)
        timeout_ms = attempt_timeout_ms(spec, utcnow())
        self._cut_short_by_deadline = timeout_ms < (spec.timeout_ms or DEFAULT_TIMEOUT_MS)
        admission = await self._tools.limits.admit_to_origin(origin, timeout_ms)
        if not admission.allowed:
            await self._wait_for_breaker_or_fail(origin, admission, deadline)
            return None
        outcome = Outcome.NEUTRAL
        try:
            slot = await self._tools.limits.host_slot(host)
            if isinstance(slot, Unreadable):
                raise limit_unknown("url", f"the concurrency limit of host {host}", slot)
            if isinstance(slot, Busy):
                await self._ends.hand_back_as_wait(
                    WaitReason.HOST_BUSY, slot.retry_after_seconds, deadline
                )
                return None
            try:
                capture = await self._browse(spec, host, timeout_ms)
                outcome = Outcome.SUCCESS
            except BaseException as error:
                if isinstance(error, TaskFailure):
                    outcome = outcome_of(error)
                if slot is not None:
                    await slot.release()
                raise
        finally:
            await self._tools.limits.record(origin, admission, outcome)
        return await self._stored_while_released(capture, slot)

    async def _stored_while_released(
        self, capture: Capture, slot: Lease | None
    ) -> tasks_pb2.TaskResult:
        """The artifacts stored while the host's slot is given back (the page is done with it).

        The give-back is a NATS round trip, a few ms that the task's result need not wait for.
        """
        releasing = asyncio.create_task(slot.release()) if slot is not None else None
        try:
            return await self._with_stored_artifacts(capture)
        finally:
            if releasing is not None:
                await releasing

    async def _wait_for_breaker_or_fail(
        self, origin: str, admission: Admission, deadline: dt.datetime | None
    ) -> None:
        """Hands the task back until the open breaker may let it in, or fails it CIRCUIT_OPEN."""
        if self._tools.settings.breaker_mode == "wait":
            # Spread the waiting tasks, so they do not all come back at the same instant.
            delay = admission.retry_after_seconds * random.uniform(1.0, 1.25)
            await self._ends.hand_back_as_wait(WaitReason.BREAKER, delay, deadline)
            return
        raise TaskFailure(
            ErrorCode.CIRCUIT_OPEN,
            f"url: the circuit breaker of {breaker_origin(origin)} is open after repeated "
            f"failures; a trial task may try it in {admission.retry_after_seconds:.1f} s",
        )

    async def _browse(self, spec: tasks_pb2.TaskSpec, host: str, timeout_ms: int) -> Capture:
        """Reports the attempt RUNNING and runs the spec in the browser within its time limit."""
        await self._ends.report(tasks_pb2.TASK_STATUS_RUNNING)
        self._running = True
        # The host only: a URL's path and query may carry the tenant's secrets.
        log.info("task %s attempt %d running on %s", self.task_id, self.attempt, host)
        if self._cut_short_by_deadline:
            limited = tasks_pb2.TaskSpec()
            limited.CopyFrom(spec)
            limited.timeout_ms = timeout_ms
            spec = limited
        keeper = self._tools.reporting.keeper
        profile_state = (
            await keeper.load_profile(self._owner(), spec.profile) if spec.profile else b""
        )
        try:
            with tracer().start_as_current_span("browser.run", attributes={"farm.host": host}):
                capture = await self._tools.runner.run(spec, profile_state, self.item.tenant)
        except TaskFailure:
            raise
        except Exception as error:
            log.exception("task %s failed unexpectedly", self.task_id)
            raise TaskFailure(ErrorCode.INTERNAL, f"{type(error).__name__}: {error}") from error
        log_blocked(self.task_id, capture)
        return capture

    def _owner(self) -> ArtifactOwner:
        """The attempt as storage knows it: its task, tenant, grant and number."""
        return ArtifactOwner(
            self.item.tenant,
            self.task_id,
            self.item.upload_grant,
            attempt=self.attempt,
            work_sequence=self._message.metadata.sequence.stream,
            deadline=deadline_of(self.item.spec),
            on_storage_wait=self._ends.note_storage_wait,
        )

    async def _with_stored_artifacts(self, capture: Capture) -> tasks_pb2.TaskResult:
        """The capture's result once its artifacts, comparison and profile are stored."""
        return await self._tools.reporting.keeper.keep(self._owner(), capture)

    async def _stopped(self, deadline: dt.datetime | None) -> None:
        if self._stop_reason is StopReason.CANCELLED:
            log.info("task %s stopped: cancelled", self.task_id)
            await self._ends.report(tasks_pb2.TASK_STATUS_CANCELLED)
            await self._delivery.ack(DeliveryOutcome.CANCELLED)
        elif self._running:
            log.info("task %s handed back: the agent is shutting down", self.task_id)
            await self._delivery.hand_back_after(0, DeliveryOutcome.REQUEUED)
        else:
            await self._ends.hand_back_as_wait(WaitReason.DRAINING, 0, deadline)

    def _end_reason_before_start(self, ended: str | None) -> str | None:
        if self._stop_reason is StopReason.CANCELLED:
            return task_ends.CANCELLED
        return ended

    async def _ack_ended(self, reason: str) -> None:
        """Acks unrun a delivery of a task the scheduler has ended (reporting a cancel)."""
        if reason == task_ends.CANCELLED:
            log.info("task %s was cancelled before it started", self.task_id)
            await self._ends.report(tasks_pb2.TASK_STATUS_CANCELLED)
            await self._delivery.ack(DeliveryOutcome.CANCELLED)
            return
        # Ended elsewhere while this delivery waited (an earlier attempt lapsed): the
        # scheduler knows its end, so there is nothing to report.
        log.info("task %s has ended (%s): its delivery is acked unrun", self.task_id, reason)
        await self._delivery.ack(DeliveryOutcome.ENDED)
