"""Reports a task's progress as AgentEvents on `events.tasks.<task_id>.<agent_id>` (FARM_EVENTS)."""

import datetime as dt
import logging
import uuid

import nats.errors
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential,
)

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture, shorten_text
from farm_agent.errors import TaskFailure
from farm_core.nats_size import header_bytes
from farm_core.queue import event_subject
from farm_core.task_errors import ErrorCode
from farm_core.trace_context import producing

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
REPORT_RETRY_SECONDS = 15.0
"""How long an event that JetStream did not take is sent again before the task is
handed back (a replicated stream elects a new leader within a few seconds)."""
REPORT_RETRY_FIRST_PAUSE_SECONDS = 0.25
REPORT_RETRY_MAX_PAUSE_SECONDS = 2.0


class ReportFailed(Exception):
    """An event could not be stored in JetStream; the task must not be acked."""


class EventReporter:
    """Publishes one agent's events, each with a unique id as `Nats-Msg-Id`."""

    def __init__(self, js: JetStreamContext, agent_id: str, max_payload_bytes: int) -> None:
        self._js = js
        self._agent_id = agent_id
        self._max_payload_bytes = max_payload_bytes

    async def report(
        self,
        task_id: str,
        status: "tasks_pb2.TaskStatus.ValueType",
        attempt: int,
        *,
        grant: str,
        result: tasks_pb2.TaskResult | None = None,
        error: tasks_pb2.TaskError | None = None,
        retry_time: dt.datetime | None = None,
        redelivered: bool = False,
        status_message: str = "",
    ) -> queue_pb2.AgentEvent:
        """Publishes the event and waits for JetStream to store it; raises ReportFailed.

        QUEUED with an error and `retry_time` says the attempt failed and the task is
        offered again then. `grant` is the task's (WorkItem.upload_grant): the scheduler
        applies no event without it. `redelivered`: the attempt's delivery may have lapsed.
        `status_message`, with RUNNING: what the running attempt waits for.
        """
        event = queue_pb2.AgentEvent(
            event_id=uuid.uuid4().hex,
            task_id=task_id,
            status=status,
            agent_id=self._agent_id,
            attempt=attempt,
            time=_now(),
            result=result,
            error=error,
            grant=grant,
            redelivered=redelivered,
            status_message=status_message,
        )
        if retry_time is not None:
            event.retry_time.FromDatetime(retry_time)
        subject = event_subject(task_id, self._agent_id)
        traced = {"farm.task_id": task_id, "farm.status": tasks_pb2.TaskStatus.Name(status)}
        # A stream without a leader (a NATS node just died, the rest elect one) answers
        # nothing for a few seconds: the same event (same Nats-Msg-Id, stored once) is
        # sent again rather than the task handed back, which would spend an attempt.
        retrying = AsyncRetrying(
            stop=stop_before_delay(REPORT_RETRY_SECONDS),
            wait=wait_exponential(
                multiplier=REPORT_RETRY_FIRST_PAUSE_SECONDS, max=REPORT_RETRY_MAX_PAUSE_SECONDS
            ),
            retry=retry_if_exception_type((nats.errors.Error, TimeoutError)),
            reraise=True,
        )
        try:
            async for trial in retrying:
                with trial, producing("task.report", subject, attributes=traced) as traced_headers:
                    headers = {**traced_headers, "Nats-Msg-Id": event.event_id}
                    await self._js.publish(
                        subject,
                        self._fit(event, header_bytes(headers)),
                        timeout=PUBLISH_TIMEOUT_SECONDS,
                        headers=headers,
                    )
        except (nats.errors.Error, TimeoutError) as failure:
            raise ReportFailed(
                f"publishing the {tasks_pb2.TaskStatus.Name(status)} event of task {task_id} "
                f"failed: {failure}"
            ) from failure
        return event

    def _fit(self, event: queue_pb2.AgentEvent, headers_size: int) -> bytes:
        """The event's bytes, its text cut to fit one NATS message with its headers.

        The server counts the headers against max_payload too, and closes for good the
        connection of a client that sends more.
        """
        payload = event.SerializeToString()
        overflow = len(payload) + headers_size - self._max_payload_bytes
        if overflow <= 0:
            return payload
        if not shorten_text(event.result, overflow):
            raise TaskFailure(
                ErrorCode.RESULT_TOO_LARGE,
                f"the result is {len(payload)} bytes; a NATS message holds at most "
                f"{self._max_payload_bytes} with its headers",
            )
        return event.SerializeToString()


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def log_blocked(task_id: str, capture: Capture) -> None:
    """Logs the page's requests the egress guard refused, which did not fail the task."""
    blocked = capture.result.blocked_requests
    if blocked:
        log.info(
            "task %s: the egress guard refused %d of the page's requests: %s",
            task_id,
            len(blocked),
            "; ".join(f"{request.target} ({request.message})" for request in blocked),
        )
