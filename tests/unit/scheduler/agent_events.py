"""Agents' events as the task state machine's tests write them, at times counted from T0."""

import datetime as dt

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import to_timestamp
from farm_scheduler.lifecycle import TaskState, apply_event

T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    """T0 plus `seconds`."""
    return T0 + dt.timedelta(seconds=seconds)


def event(
    status: "tasks_pb2.TaskStatus.ValueType",
    attempt: int = 1,
    agent: str = "agent-a",
    seconds: float = 1,
    **fields: object,
) -> queue_pb2.AgentEvent:
    """An agent's report of `attempt`, sent at(`seconds`)."""
    return queue_pb2.AgentEvent(
        event_id=f"{status}-{attempt}-{agent}",
        task_id="t1",
        status=status,
        agent_id=agent,
        attempt=attempt,
        time=to_timestamp(at(seconds)),
        **fields,  # type: ignore[arg-type]
    )


def retry_report(attempt: int, agent: str, seconds: float) -> queue_pb2.AgentEvent:
    """An attempt failed and the task will be tried again 5 s later, as an agent reports it."""
    return event(
        tasks_pb2.TASK_STATUS_QUEUED,
        attempt,
        agent,
        seconds,
        error=tasks_pb2.TaskError(code="TIMEOUT", retryable=True),
        retry_time=to_timestamp(at(seconds + 5)),
    )


def run(state: TaskState, *events: queue_pb2.AgentEvent) -> TaskState:
    """The state after `events`, each applied if it changes anything."""
    for each in events:
        state = apply_event(state, each, T0) or state
    return state
