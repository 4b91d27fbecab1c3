"""The task state machine: QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED.

Pure functions of a task's state and an event. Final states never change, and an
event applied twice (or after a later one) changes nothing, so JetStream's
at-least-once delivery of the agents' events is safe.
"""

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import from_timestamp

Status: TypeAlias = "tasks_pb2.TaskStatus.ValueType"

FINAL_STATUSES: frozenset[Status] = frozenset(
    {tasks_pb2.TASK_STATUS_SUCCEEDED, tasks_pb2.TASK_STATUS_FAILED, tasks_pb2.TASK_STATUS_CANCELLED}
)
UNKNOWN_ERROR_CODE = "UNKNOWN"


@dataclass(frozen=True)
class TaskState:
    """The parts of a task that its events change."""

    status: Status
    attempts: int = 0
    agent_id: str = ""
    start_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    result: bytes = b""
    """The serialized farm.tasks.v1.TaskResult, empty until the task succeeds."""
    error_code: str = ""
    error_message: str = ""


def is_final(status: Status) -> bool:
    """Whether a task in `status` has ended for good."""
    return status in FINAL_STATUSES


def apply_event(
    state: TaskState, event: queue_pb2.AgentEvent, received: dt.datetime
) -> TaskState | None:
    """The state after an agent's `event`, or None when the event changes nothing.

    The event's own time counts; `received` stands in when the agent sent none.
    """
    if is_final(state.status):
        return None
    when = from_timestamp(event.time) if event.HasField("time") else received
    # Attempts count from 1; an event without one is taken as the first.
    attempt = max(event.attempt, 1)
    if event.status == tasks_pb2.TASK_STATUS_RUNNING:
        return _started(state, event.agent_id, attempt, when)
    if event.status == tasks_pb2.TASK_STATUS_SUCCEEDED:
        return dataclasses.replace(
            _finished(state, event.status, when),
            attempts=max(state.attempts, attempt),
            agent_id=_latest_agent(state, event.agent_id, attempt),
            result=event.result.SerializeToString(deterministic=True),
        )
    if event.status == tasks_pb2.TASK_STATUS_FAILED:
        return dataclasses.replace(
            _finished(state, event.status, when),
            agent_id=_latest_agent(state, event.agent_id, attempt),
            error_code=event.error.code or UNKNOWN_ERROR_CODE,
            error_message=event.error.message,
        )
    if event.status == tasks_pb2.TASK_STATUS_CANCELLED:
        return _finished(state, event.status, when)
    return None


def cancel(state: TaskState, now: dt.datetime) -> TaskState | None:
    """The state after a user cancels the task, or None if it has already ended."""
    if is_final(state.status):
        return None
    return _finished(state, tasks_pb2.TASK_STATUS_CANCELLED, now)


def _started(state: TaskState, agent_id: str, attempt: int, when: dt.datetime) -> TaskState | None:
    if state.status == tasks_pb2.TASK_STATUS_RUNNING and attempt <= state.attempts:
        # A repeated or overtaken report of an attempt already known.
        return None
    return dataclasses.replace(
        state,
        status=tasks_pb2.TASK_STATUS_RUNNING,
        attempts=max(state.attempts, attempt),
        agent_id=agent_id,
        start_time=when,
    )


def _finished(state: TaskState, status: Status, when: dt.datetime) -> TaskState:
    return dataclasses.replace(state, status=status, finish_time=when)


def _latest_agent(state: TaskState, agent_id: str, attempt: int) -> str:
    """The agent of the latest attempt: the reporting one unless an earlier attempt reports."""
    return agent_id if agent_id and attempt >= state.attempts else state.agent_id
