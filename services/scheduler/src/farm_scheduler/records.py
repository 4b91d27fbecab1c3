"""A task as the scheduler holds it, its API view, and its mapping to and from SQL rows."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping

from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import from_timestamp, to_timestamp
from farm_core.trace_context import trace_id_of
from farm_scheduler.lifecycle import Attempt, TaskState


@dataclass(frozen=True)
class TaskRecord:
    """A task as stored: who owns it, what it asks for, its state and its bookkeeping."""

    id: str
    tenant: str
    spec: tasks_pb2.TaskSpec
    create_time: dt.datetime
    state: TaskState
    published: bool = False
    """Whether JetStream has stored the WorkItem of the task's latest queuing."""
    dead_letter_pending: bool = False
    """Whether its DeadLetter still has to be published to FARM_DEAD."""
    revision: int = 0
    tenant_max_running: int = 0
    """The tenant's maxRunningTasks when the task was accepted, for the agents; 0 unlimited."""
    trace_parent: str = ""
    """The W3C traceparent of the call that created it ("" untraced): its trace's root here."""

    @property
    def deadline(self) -> dt.datetime | None:
        """The spec's deadline, if it has one."""
        return from_timestamp(self.spec.deadline) if self.spec.HasField("deadline") else None

    @property
    def publish_id(self) -> str:
        """The Nats-Msg-Id of its WorkItem: the task id, then a new one for each requeue.

        JetStream drops a second message with the same id within its duplicate
        window, so a requeued task needs an id of its own.
        """
        requeues = self.state.requeues
        return self.id if requeues == 0 else f"{self.id}.r{requeues}"

    @property
    def dead_letter_id(self) -> str:
        """The Nats-Msg-Id of its DeadLetter, the same for every publish of one failure."""
        requeues, attempts = self.state.requeues, self.state.attempts
        if requeues == 0:
            return f"{self.id}.dead.{attempts}"
        return f"{self.id}.r{requeues}.dead.{attempts}"

    def change_time(self) -> dt.datetime:
        """When the task last changed state: its end, its latest queuing, or its start."""
        state = self.state
        if state.finish_time is not None:
            return state.finish_time
        if state.status == tasks_pb2.TASK_STATUS_QUEUED:
            # Queued when created, after a failed attempt, or by a requeue: the latest.
            latest_failure = state.history[-1].finish_time if state.history else None
            moments = [self.create_time, state.requeue_time, latest_failure]
            return max(moment for moment in moments if moment is not None)
        return state.start_time or self.create_time

    def to_proto(self) -> tasks_pb2.Task:
        """The API's view of the task."""
        state = self.state
        task = tasks_pb2.Task(
            id=self.id,
            tenant=self.tenant,
            status=state.status,
            spec=self.spec,
            attempts=state.attempts,
            agent_id=state.agent_id,
            create_time=to_timestamp(self.create_time),
            attempt_history=[attempt_proto(attempt) for attempt in state.history],
            trace_id=trace_id_of(self.trace_parent),
        )
        if state.start_time is not None:
            task.start_time.CopyFrom(to_timestamp(state.start_time))
        if state.finish_time is not None:
            task.finish_time.CopyFrom(to_timestamp(state.finish_time))
        if state.retry_time is not None:
            task.retry_time.CopyFrom(to_timestamp(state.retry_time))
        if state.status == tasks_pb2.TASK_STATUS_SUCCEEDED:
            task.result.ParseFromString(state.result)
        if state.error_code:
            task.error.CopyFrom(
                tasks_pb2.TaskError(
                    code=state.error_code,
                    message=state.error_message,
                    retryable=state.error_retryable,
                )
            )
        return task


def attempt_proto(attempt: Attempt) -> tasks_pb2.AttemptRecord:
    """The API's view of one attempt."""
    record = tasks_pb2.AttemptRecord(attempt=attempt.number, agent_id=attempt.agent_id)
    if attempt.start_time is not None:
        record.start_time.CopyFrom(to_timestamp(attempt.start_time))
    if attempt.finish_time is not None:
        record.finish_time.CopyFrom(to_timestamp(attempt.finish_time))
    if attempt.error_code:
        record.error.CopyFrom(
            tasks_pb2.TaskError(
                code=attempt.error_code, message=attempt.error_message, retryable=attempt.retryable
            )
        )
    return record


def record_from_row(values: RowMapping, history: tuple[Attempt, ...]) -> TaskRecord:
    """The task in a `tasks` row, with its attempts."""
    return TaskRecord(
        id=values["id"],
        tenant=values["tenant"],
        spec=tasks_pb2.TaskSpec.FromString(values["spec"]),
        create_time=values["create_time"],
        published=values["published"],
        dead_letter_pending=values["dead_letter_pending"],
        revision=values["revision"],
        tenant_max_running=values["tenant_max_running"] or 0,
        trace_parent=values["trace_parent"],
        state=TaskState(
            status=tasks_pb2.TaskStatus.Value(values["status"]),
            attempts=values["attempts"],
            agent_id=values["agent_id"],
            start_time=values["start_time"],
            finish_time=values["finish_time"],
            result=values["result"],
            error_code=values["error_code"],
            error_message=values["error_message"],
            error_retryable=values["error_retryable"],
            history=history,
            retry_time=values["retry_time"],
            dead_time=values["dead_time"],
            attempt_base=values["attempt_base"],
            requeues=values["requeues"],
            requeue_time=values["requeue_time"],
            requeue_event_sequence=values["requeue_event_sequence"],
        ),
    )


def attempt_from_row(values: RowMapping) -> Attempt:
    """The attempt in a `task_attempts` row."""
    return Attempt(
        number=values["attempt"],
        agent_id=values["agent_id"],
        start_time=values["start_time"],
        finish_time=values["finish_time"],
        error_code=values["error_code"],
        error_message=values["error_message"],
        retryable=values["retryable"],
    )


def state_values(state: TaskState) -> dict[str, Any]:
    """The `tasks` columns that hold `state` (all but its history)."""
    return {
        "status": tasks_pb2.TaskStatus.Name(state.status),
        "attempts": state.attempts,
        "agent_id": state.agent_id,
        "start_time": state.start_time,
        "finish_time": state.finish_time,
        "result": state.result,
        "error_code": state.error_code,
        "error_message": state.error_message,
        "error_retryable": state.error_retryable,
        "retry_time": state.retry_time,
        "dead_time": state.dead_time,
        "attempt_base": state.attempt_base,
        "requeues": state.requeues,
        "requeue_time": state.requeue_time,
        "requeue_event_sequence": state.requeue_event_sequence,
    }


def row_values(record: TaskRecord) -> dict[str, Any]:
    """Every `tasks` column of a new task."""
    spec = record.spec
    return {
        "id": record.id,
        "tenant": record.tenant,
        "spec": spec.SerializeToString(deterministic=True),
        "priority": tasks_pb2.Priority.Name(spec.priority),
        "region": spec.region,
        "labels": dict(spec.labels),
        "idempotency_key": spec.idempotency_key,
        "create_time": record.create_time,
        "deadline": record.deadline,
        "published": record.published,
        "dead_letter_pending": record.dead_letter_pending,
        "revision": record.revision,
        "tenant_max_running": record.tenant_max_running,
        "trace_parent": record.trace_parent,
        **state_values(record.state),
    }


def attempt_values(task_id: str, attempt: Attempt) -> dict[str, Any]:
    """The `task_attempts` row of one attempt."""
    return {
        "task_id": task_id,
        "attempt": attempt.number,
        "agent_id": attempt.agent_id,
        "start_time": attempt.start_time,
        "finish_time": attempt.finish_time,
        "error_code": attempt.error_code,
        "error_message": attempt.error_message,
        "retryable": attempt.retryable,
    }
