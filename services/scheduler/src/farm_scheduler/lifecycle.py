"""The task state machine: QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED, with retries.

A failed attempt that will be retried moves a RUNNING task back to QUEUED (with
its retry time); the next attempt's RUNNING moves it on. Pure functions of a
task's state and an event. Final states never change, and an event applied twice
(or after a later one) changes nothing, so JetStream's at-least-once delivery of
the agents' events is safe. Every attempt is kept in the task's history.

Agents number the attempts of one queuing of a task from 1; after RequeueDeadLetter
queued a task again, its new attempts are numbered after the earlier ones
(`attempt_base` + the agent's number).

Only the task's current attempt moves it: the newest one that has started. An agent
cut off from NATS keeps running its attempt while the task is redelivered and a later
attempt starts elsewhere; what the cut-off attempt reports afterwards (a success, a
failure such as storage refusing its stale upload, a retry) goes into its entry of the
history and changes nothing else (`overtaken`). An event that names no attempt (0) is
applied as before, as the first. An attempt that had not ended when a later one
started (or a delivery that never started ended the task) is recorded as lost,
AGENT_LOST (attempts.py), until it reports itself.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.task_errors import ErrorCode
from farm_core.timestamps import from_timestamp
from farm_scheduler.attempts import Attempt as Attempt
from farm_scheduler.attempts import lost_before, unless_lost

Status: TypeAlias = "tasks_pb2.TaskStatus.ValueType"

QUEUED = tasks_pb2.TASK_STATUS_QUEUED
RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
CANCELLED = tasks_pb2.TASK_STATUS_CANCELLED
FINAL_STATUSES: frozenset[Status] = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass(frozen=True)
class TaskState:
    """The parts of a task that its events, cancels, deadline and requeues change."""

    status: Status
    attempts: int = 0
    agent_id: str = ""
    start_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    result: bytes = b""
    """The serialized farm.tasks.v1.TaskResult, empty until the task succeeds."""
    error_code: str = ""
    error_message: str = ""
    error_retryable: bool = False
    history: tuple[Attempt, ...] = ()
    """Every attempt so far, by number."""
    retry_time: dt.datetime | None = None
    """Set while the task waits in the queue for a retry."""
    dead_time: dt.datetime | None = None
    """Set while the task is FAILED: when it was given up."""
    attempt_base: int = 0
    requeues: int = 0
    requeue_time: dt.datetime | None = None
    requeue_event_sequence: int = 0
    status_message: str = ""
    """What the running attempt waits for, as its agent last said; shown while RUNNING."""


def is_final(status: Status) -> bool:
    """Whether a task in `status` has ended for good."""
    return status in FINAL_STATUSES


def apply_event(
    state: TaskState, event: queue_pb2.AgentEvent, received: dt.datetime, sequence: int = 0
) -> TaskState | None:
    """The state after an agent's `event`, or None when the event changes nothing.

    The event's own time counts; `received` stands in when the agent sent none.
    `sequence` is the event's FARM_EVENTS stream sequence (0 when unknown).
    """
    if is_final(state.status):
        return None
    when = from_timestamp(event.time) if event.HasField("time") else received
    if _predates_requeue(state, sequence, when):
        return None
    # Attempts count from 1; an event without one is taken as the first.
    number = state.attempt_base + max(event.attempt, 1)
    if not _from_holder(state, event, number):
        return None
    handler = _EVENT_HANDLERS.get(event.status)
    if handler is None or (event.status == QUEUED and not event.HasField("error")):
        # No progress to report (a QUEUED event means a failed attempt, with its error).
        return None
    before = state
    if number > state.attempts:
        # A later delivery reports: the attempts before it that never ended were lost.
        history = lost_before(state.history, number, event.agent_id, when)
        state = dataclasses.replace(state, history=history)
    if event.status != RUNNING and overtaken(state, event):
        after = _overtaken_attempt_ended(state, event, number, when)
    else:
        after = handler(state, event, number, when)
    return None if after == before else after


def overtaken(state: TaskState, event: queue_pb2.AgentEvent) -> bool:
    """Whether the event is of an attempt older than the task's newest started one.

    Such an attempt (its agent was cut off, and the task redelivered) is no longer the
    task's: its report is history only. An event without an attempt number is never
    overtaken (it is applied as it was before attempts were compared).
    """
    return event.attempt > 0 and state.attempt_base + event.attempt < state.attempts


def ended_elsewhere(before: TaskState, after: TaskState, event: queue_pb2.AgentEvent) -> bool:
    """Whether the event failed the task for an attempt that never started.

    An agent fails a delivery it does not start (the task's attempts used up, its
    deadline passed) when an earlier delivery lapsed: that earlier attempt may
    still run, cut off, and upload. A task ended by its own attempt's report is not.
    """
    number = before.attempt_base + max(event.attempt, 1)
    return not is_final(before.status) and after.status == FAILED and number > before.attempts


def cancel(state: TaskState, now: dt.datetime) -> TaskState | None:
    """The state after a user cancels the task, or None if it has already ended."""
    if is_final(state.status):
        return None
    return _ended(state, CANCELLED, now)


def expire(state: TaskState, now: dt.datetime, deadline: dt.datetime) -> TaskState | None:
    """The state of a task still queued at its deadline: FAILED, DEADLINE_EXCEEDED.

    None unless the task is QUEUED (a running attempt is the agent's to stop).
    """
    if state.status != QUEUED:
        return None
    return dataclasses.replace(
        _ended(state, FAILED, now),
        error_code=ErrorCode.DEADLINE_EXCEEDED.value,
        error_message=f"the deadline {deadline.isoformat()} passed while the task was queued",
        error_retryable=False,
        dead_time=now,
    )


def requeue(state: TaskState, now: dt.datetime, event_sequence: int) -> TaskState | None:
    """The state of a FAILED task queued again with a fresh set of attempts; None if not FAILED.

    `event_sequence` is the last FARM_EVENTS sequence before the requeue: the
    earlier attempts' events up to it change nothing afterwards.
    """
    if state.status != FAILED:
        return None
    last_attempt = max([state.attempts, *(attempt.number for attempt in state.history)])
    return dataclasses.replace(
        state,
        status=QUEUED,
        attempts=last_attempt,
        attempt_base=last_attempt,
        finish_time=None,
        result=b"",
        error_code="",
        error_message="",
        error_retryable=False,
        retry_time=None,
        dead_time=None,
        requeues=state.requeues + 1,
        requeue_time=now,
        requeue_event_sequence=event_sequence,
    )


def _predates_requeue(state: TaskState, sequence: int, when: dt.datetime) -> bool:
    """Whether the event was sent before the latest requeue, by an earlier attempt.

    Both tests must hold: the stream order alone would misjudge a recreated stream,
    the agent's clock alone an agent whose clock is behind.
    """
    return (
        state.requeue_time is not None
        and 0 < sequence <= state.requeue_event_sequence
        and when <= state.requeue_time
    )


def _from_holder(state: TaskState, event: queue_pb2.AgentEvent, number: int) -> bool:
    """Whether the event's agent may report attempt `number`: the one that started it, if any.

    A report of an attempt another agent holds (one redelivered away from it) changes nothing.
    """
    holder = next((a.agent_id for a in state.history if a.number == number), "")
    return not holder or event.agent_id == holder


def _started(
    state: TaskState, event: queue_pb2.AgentEvent, number: int, when: dt.datetime
) -> TaskState:
    history = _update_attempt(
        state.history,
        number,
        lambda attempt: dataclasses.replace(
            attempt,
            agent_id=attempt.agent_id or event.agent_id,
            start_time=attempt.start_time or when,
        ),
    )
    if number == state.attempts and state.status == RUNNING:
        # The running attempt again: it may say what it waits for (storage).
        return dataclasses.replace(state, history=history, status_message=event.status_message)
    if number <= state.attempts:
        # A repeated or overtaken report of an attempt already known: history only.
        return dataclasses.replace(state, history=history)
    return dataclasses.replace(
        state,
        status=RUNNING,
        attempts=number,
        agent_id=event.agent_id,
        start_time=when,
        retry_time=None,
        history=history,
        status_message=event.status_message,
    )


def _retrying(
    state: TaskState, event: queue_pb2.AgentEvent, number: int, when: dt.datetime
) -> TaskState:
    history = _attempt_finished(state.history, number, event, when, event.error)
    if number < state.attempts or (number == state.attempts and state.status != RUNNING):
        # An attempt that a later one overtook, or a repeated report: history only.
        return dataclasses.replace(state, history=history)
    return dataclasses.replace(
        state,
        status=QUEUED,
        attempts=number,
        agent_id=event.agent_id or state.agent_id,
        retry_time=from_timestamp(event.retry_time) if event.HasField("retry_time") else None,
        history=history,
    )


def _succeeded(
    state: TaskState, event: queue_pb2.AgentEvent, number: int, when: dt.datetime
) -> TaskState:
    ended = _ended(state, SUCCEEDED, when)
    return dataclasses.replace(
        ended,
        attempts=max(state.attempts, number),
        agent_id=_latest_agent(state, event.agent_id, number),
        result=event.result.SerializeToString(deterministic=True),
        history=_attempt_finished(ended.history, number, event, when),
    )


def _failed(
    state: TaskState, event: queue_pb2.AgentEvent, number: int, when: dt.datetime
) -> TaskState:
    error = event.error
    code = error.code or ErrorCode.UNKNOWN.value
    ended = _ended(state, FAILED, when)
    history = ended.history
    # A failure reported for an attempt that never started (attempts used up, the
    # deadline passed) ends the task without counting an attempt.
    if number <= state.attempts:
        history = _attempt_finished(history, number, event, when, error)
    return dataclasses.replace(
        ended,
        agent_id=_latest_agent(state, event.agent_id, number),
        error_code=code,
        error_message=error.message,
        error_retryable=error.retryable,
        dead_time=when,
        history=history,
    )


def _overtaken_attempt_ended(
    state: TaskState, event: queue_pb2.AgentEvent, number: int, when: dt.datetime
) -> TaskState:
    """An overtaken attempt's end: its entry in the history is finished, nothing else moves."""
    error = event.error if event.HasField("error") else None
    history = _update_attempt(state.history, number, unless_lost)
    return dataclasses.replace(
        state, history=_attempt_finished(history, number, event, when, error)
    )


def _cancelled_by_agent(
    state: TaskState, event: queue_pb2.AgentEvent, number: int, when: dt.datetime
) -> TaskState:
    return _ended(state, CANCELLED, when)


def _ended(state: TaskState, status: Status, when: dt.datetime) -> TaskState:
    """`state` ended in `status` at `when`; a running attempt ends with it."""
    history = state.history
    if state.status == RUNNING:
        history = _update_attempt(
            history,
            state.attempts,
            lambda attempt: dataclasses.replace(attempt, finish_time=attempt.finish_time or when),
        )
    return dataclasses.replace(
        state, status=status, finish_time=when, retry_time=None, history=history
    )


def _attempt_finished(
    history: tuple[Attempt, ...],
    number: int,
    event: queue_pb2.AgentEvent,
    when: dt.datetime,
    error: tasks_pb2.TaskError | None = None,
) -> tuple[Attempt, ...]:
    """`history` with attempt `number` finished at `when` by the event's agent, with `error`.

    A finish time or agent the attempt already has is kept.
    """

    def finish(attempt: Attempt) -> Attempt:
        finished = dataclasses.replace(
            attempt,
            agent_id=attempt.agent_id or event.agent_id,
            finish_time=attempt.finish_time or when,
        )
        if error is None:
            return finished
        return dataclasses.replace(
            finished,
            error_code=error.code or ErrorCode.UNKNOWN.value,
            error_message=error.message,
            retryable=error.retryable,
        )

    return _update_attempt(history, number, finish)


def _update_attempt(
    history: tuple[Attempt, ...], number: int, change: Callable[[Attempt], Attempt]
) -> tuple[Attempt, ...]:
    """`history` with attempt `number` changed (added first if it is not there), by number."""
    by_number = {attempt.number: attempt for attempt in history}
    by_number[number] = change(by_number.get(number, Attempt(number)))
    return tuple(by_number[key] for key in sorted(by_number))


def _latest_agent(state: TaskState, agent_id: str, attempt: int) -> str:
    """The agent of the latest attempt: the reporting one unless an earlier attempt reports."""
    return agent_id if agent_id and attempt >= state.attempts else state.agent_id


EventHandler: TypeAlias = Callable[[TaskState, queue_pb2.AgentEvent, int, dt.datetime], TaskState]
"""Applies an event of attempt `number`, sent at `when`, to a task that has not ended."""

_EVENT_HANDLERS: Mapping[Status, EventHandler] = {
    RUNNING: _started,
    QUEUED: _retrying,
    SUCCEEDED: _succeeded,
    FAILED: _failed,
    CANCELLED: _cancelled_by_agent,
}
