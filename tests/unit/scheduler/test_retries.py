"""Retries in the task state machine: attempts back in the queue, their history, late and
out-of-order reports, deadlines and requeues."""

import datetime as dt

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.task_errors import ErrorCode
from farm_core.timestamps import to_timestamp
from farm_scheduler.lifecycle import (
    Attempt,
    TaskState,
    apply_event,
    expire,
    requeue,
)
from tests.unit.scheduler.agent_events import T0, at, event, retry_report, run

DEADLINE_EXCEEDED = ErrorCode.DEADLINE_EXCEEDED
RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
QUEUED = TaskState(status=tasks_pb2.TASK_STATUS_QUEUED)


def failed(attempt: int, seconds: float, code: str = "NAVIGATION_FAILED") -> queue_pb2.AgentEvent:
    return event(
        FAILED, attempt, seconds=seconds, error=tasks_pb2.TaskError(code=code, message="no")
    )


def test_retryable_failure_puts_the_task_back_in_the_queue_until_its_retry_time() -> None:
    state = run(QUEUED, event(RUNNING, seconds=1), retry_report(1, "agent-a", seconds=3))

    assert (state.status, state.attempts, state.retry_time) == (
        tasks_pb2.TASK_STATUS_QUEUED,
        1,
        at(8),
    )
    assert state.history == (
        Attempt(
            1,
            agent_id="agent-a",
            start_time=at(1),
            finish_time=at(3),
            error_code="TIMEOUT",
            retryable=True,
        ),
    )
    # The task has not failed: only its attempt has.
    assert (state.error_code, state.finish_time, state.dead_time) == ("", None, None)


def test_two_retries_then_success_keeps_three_attempts_two_with_errors() -> None:
    state = run(
        QUEUED,
        event(RUNNING, 1, "agent-a", seconds=1),
        retry_report(1, "agent-a", seconds=2),
        event(RUNNING, 2, "agent-b", seconds=10),
        retry_report(2, "agent-b", seconds=11),
        event(RUNNING, 3, "agent-a", seconds=30),
        event(SUCCEEDED, 3, "agent-a", seconds=31),
    )

    assert (state.status, state.attempts, state.agent_id, state.retry_time) == (
        SUCCEEDED,
        3,
        "agent-a",
        None,
    )
    assert [(each.number, each.agent_id, each.error_code) for each in state.history] == [
        (1, "agent-a", "TIMEOUT"),
        (2, "agent-b", "TIMEOUT"),
        (3, "agent-a", ""),
    ]
    assert [(each.start_time, each.finish_time) for each in state.history] == [
        (at(1), at(2)),
        (at(10), at(11)),
        (at(30), at(31)),
    ]
    assert state.start_time == at(30) and state.error_code == ""


def test_next_attempt_starting_clears_the_retry_time() -> None:
    state = run(QUEUED, event(RUNNING), retry_report(1, "agent-a", 2), event(RUNNING, 2, seconds=9))
    assert (state.status, state.attempts, state.retry_time, state.start_time) == (
        RUNNING,
        2,
        None,
        at(9),
    )


def failed_on_the_second_attempt() -> TaskState:
    """A task whose first attempt failed and was retried, and whose second failed for good."""
    return run(
        QUEUED,
        event(RUNNING, 1, seconds=1),
        retry_report(1, "agent-a", 2),
        event(RUNNING, 2, seconds=5),
        failed(2, seconds=6),
    )


def test_failure_of_the_last_attempt_ends_the_task_with_every_error_kept() -> None:
    state = failed_on_the_second_attempt()

    assert (state.status, state.attempts, state.error_code, state.finish_time) == (
        FAILED,
        2,
        "NAVIGATION_FAILED",
        at(6),
    )
    assert state.dead_time == at(6)
    assert [each.error_code for each in state.history] == ["TIMEOUT", "NAVIGATION_FAILED"]
    assert state.history[1].finish_time == at(6)


def test_retry_report_of_attempt_1_after_attempt_2_started_only_records_its_error() -> None:
    state = run(
        QUEUED,
        event(RUNNING, 1, "agent-a", seconds=1),
        event(RUNNING, 2, "agent-b", seconds=9),
        retry_report(1, "agent-a", seconds=4),
    )

    assert (state.status, state.attempts, state.agent_id, state.retry_time) == (
        RUNNING,
        2,
        "agent-b",
        None,
    )
    assert [(each.number, each.error_code, each.finish_time) for each in state.history] == [
        (1, "TIMEOUT", at(4)),
        (2, "", None),
    ]


def test_late_start_of_a_failed_attempt_does_not_run_it_again() -> None:
    retrying = run(QUEUED, retry_report(1, "agent-a", seconds=4))
    assert (retrying.status, retrying.attempts) == (tasks_pb2.TASK_STATUS_QUEUED, 1)

    state = run(retrying, event(RUNNING, 1, seconds=1))

    assert (state.status, state.attempts, state.retry_time) == (
        tasks_pb2.TASK_STATUS_QUEUED,
        1,
        at(9),
    )
    assert state.history[0].start_time == at(1)
    assert state.history[0].finish_time == at(4)


def test_repeated_retry_report_changes_nothing() -> None:
    retrying = run(QUEUED, event(RUNNING), retry_report(1, "agent-a", 3))
    assert apply_event(retrying, retry_report(1, "agent-a", 3), T0) is None
    assert apply_event(retrying, event(RUNNING), T0) is None


def test_queued_report_without_an_error_changes_nothing() -> None:
    running = run(QUEUED, event(RUNNING))
    assert apply_event(running, event(tasks_pb2.TASK_STATUS_QUEUED), T0) is None


def test_failure_reported_without_a_start_counts_no_attempt() -> None:
    # The agent refused to start the task: its deadline had passed.
    state = run(QUEUED, failed(1, seconds=2, code=DEADLINE_EXCEEDED))
    assert (state.status, state.attempts, state.history, state.error_code) == (
        FAILED,
        0,
        (),
        DEADLINE_EXCEEDED,
    )


def test_queued_task_at_its_deadline_fails_with_deadline_exceeded() -> None:
    retrying = run(QUEUED, event(RUNNING), retry_report(1, "agent-a", 3))

    state = expire(retrying, at(20), at(19))

    assert state is not None
    assert (state.status, state.error_code, state.finish_time, state.dead_time) == (
        FAILED,
        DEADLINE_EXCEEDED,
        at(20),
        at(20),
    )
    assert state.retry_time is None and not state.error_retryable
    assert "deadline" in state.error_message
    assert state.history == retrying.history


def test_deadline_leaves_a_running_or_ended_task_alone() -> None:
    running = run(QUEUED, event(RUNNING))
    assert expire(running, at(20), at(19)) is None
    assert expire(run(running, event(SUCCEEDED)), at(20), at(19)) is None


def requeued_after_two_attempts(sequence: int = 40) -> TaskState:
    ended = failed_on_the_second_attempt()
    state = requeue(ended, at(50), sequence)
    assert state is not None
    return state


def test_requeue_queues_a_failed_task_with_a_fresh_set_of_attempts() -> None:
    state = requeued_after_two_attempts()

    assert (state.status, state.attempts, state.attempt_base, state.requeues) == (
        tasks_pb2.TASK_STATUS_QUEUED,
        2,
        2,
        1,
    )
    assert (state.error_code, state.finish_time, state.dead_time) == ("", None, None)
    assert len(state.history) == 2


def test_attempts_after_a_requeue_continue_the_numbering() -> None:
    state = run(
        requeued_after_two_attempts(),
        event(RUNNING, 1, "agent-c", seconds=60),
        event(SUCCEEDED, 1, "agent-c", seconds=61),
    )

    assert (state.status, state.attempts, state.agent_id) == (SUCCEEDED, 3, "agent-c")
    assert [each.number for each in state.history] == [1, 2, 3]
    assert state.history[2] == Attempt(3, "agent-c", start_time=at(60), finish_time=at(61))


def test_requeue_of_a_task_that_did_not_fail_changes_nothing() -> None:
    assert requeue(QUEUED, at(5), 1) is None
    assert requeue(run(QUEUED, event(RUNNING), event(SUCCEEDED)), at(5), 1) is None


def test_late_event_of_an_earlier_attempt_is_ignored_after_a_requeue() -> None:
    requeued = requeued_after_two_attempts(sequence=40)
    # The earlier attempts' final report, delivered again.
    assert apply_event(requeued, failed(2, seconds=6), T0, sequence=39) is None


def test_events_after_the_requeue_apply_even_from_a_recreated_stream() -> None:
    requeued = requeued_after_two_attempts(sequence=40)
    later_in_stream = apply_event(requeued, event(RUNNING, 1, seconds=55), T0, sequence=41)
    assert later_in_stream is not None and later_in_stream.attempts == 3
    # A stream created anew numbers from 1 again; the event's time tells it is new.
    recreated = apply_event(requeued, event(RUNNING, 1, seconds=55), T0, sequence=2)
    assert recreated is not None and recreated.attempts == 3


def test_event_without_a_sequence_is_never_taken_for_an_earlier_one() -> None:
    requeued = requeued_after_two_attempts(sequence=40)
    state = apply_event(requeued, event(RUNNING, 1, seconds=1), T0 + dt.timedelta(hours=1))
    assert state is not None and (state.status, state.attempts) == (RUNNING, 3)


def test_retry_time_is_taken_from_the_report() -> None:
    report = retry_report(1, "agent-a", 3)
    report.retry_time.CopyFrom(to_timestamp(at(100)))
    state = run(QUEUED, event(RUNNING), report)
    assert state.retry_time == at(100)
