"""The task state machine: forward only, final states kept, repeated events harmless."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_scheduler.lifecycle import (
    FINAL_STATUSES,
    Attempt,
    TaskState,
    apply_event,
    cancel,
    is_final,
)
from tests.unit.scheduler.agent_events import T0, at, event, retry_report, run

# No per-example deadline: the machine is shared, and a slow example is not a wrong one.
unhurried = settings(deadline=None)
QUEUED = TaskState(status=tasks_pb2.TASK_STATUS_QUEUED)
RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
CANCELLED = tasks_pb2.TASK_STATUS_CANCELLED


def test_running_event_starts_a_queued_task_and_opens_its_first_attempt() -> None:
    state = apply_event(QUEUED, event(RUNNING, seconds=2), T0)
    assert state == TaskState(
        status=RUNNING,
        attempts=1,
        agent_id="agent-a",
        start_time=at(2),
        history=(Attempt(1, agent_id="agent-a", start_time=at(2)),),
    )


def test_succeeded_event_stores_the_result_and_finish_time() -> None:
    result = tasks_pb2.TaskResult(http_status=200, final_url="https://example.com/")
    state = run(QUEUED, event(RUNNING, seconds=2), event(SUCCEEDED, seconds=5, result=result))
    assert (state.status, state.finish_time, state.start_time) == (SUCCEEDED, at(5), at(2))
    assert tasks_pb2.TaskResult.FromString(state.result) == result


def test_failed_event_keeps_the_error() -> None:
    error = tasks_pb2.TaskError(code="NAVIGATION_FAILED", message="net::ERR_NAME_NOT_RESOLVED")
    state = run(QUEUED, event(RUNNING), event(FAILED, seconds=3, error=error))
    assert (state.status, state.error_code, state.error_message) == (
        FAILED,
        "NAVIGATION_FAILED",
        "net::ERR_NAME_NOT_RESOLVED",
    )
    assert state.finish_time == at(3)


def test_failed_event_without_a_code_still_says_it_failed() -> None:
    state = run(QUEUED, event(RUNNING), event(FAILED))
    assert state.error_code == "UNKNOWN"


def test_repeated_running_event_changes_nothing() -> None:
    started = run(QUEUED, event(RUNNING))
    assert apply_event(started, event(RUNNING), T0) is None


def test_the_running_attempt_says_what_it_waits_for_until_the_next_attempt() -> None:
    note = "waiting for storage: storage unavailable (connection refused); retrying"
    waiting = run(QUEUED, event(RUNNING), event(RUNNING, seconds=9, status_message=note))
    assert (waiting.status, waiting.attempts, waiting.status_message) == (RUNNING, 1, note)
    assert waiting.start_time == at(1)
    # A note of an overtaken attempt changes nothing; the next attempt starts without one.
    second = run(waiting, event(RUNNING, attempt=2, seconds=20))
    assert second.status_message == ""
    late = apply_event(second, event(RUNNING, seconds=21, status_message=note), T0)
    assert (late or second).status_message == ""


def test_later_attempt_updates_attempts_agent_and_start_time() -> None:
    state = run(QUEUED, event(RUNNING), event(RUNNING, attempt=2, agent="agent-b", seconds=40))
    assert (state.status, state.attempts, state.agent_id, state.start_time) == (
        RUNNING,
        2,
        "agent-b",
        at(40),
    )


def test_earlier_attempt_arriving_late_is_recorded_without_moving_the_task_back() -> None:
    second = run(QUEUED, event(RUNNING, attempt=2, agent="agent-b", seconds=5))
    state = apply_event(second, event(RUNNING, attempt=1, agent="agent-a", seconds=1), T0)
    assert state is not None
    assert (state.status, state.attempts, state.agent_id, state.start_time) == (
        RUNNING,
        2,
        "agent-b",
        at(5),
    )
    assert [(each.number, each.agent_id) for each in state.history] == [
        (1, "agent-a"),
        (2, "agent-b"),
    ]
    assert apply_event(state, event(RUNNING, attempt=1, agent="agent-a", seconds=1), T0) is None


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("late", [RUNNING, SUCCEEDED, FAILED, CANCELLED])
def test_final_state_never_changes(
    final: "tasks_pb2.TaskStatus.ValueType", late: "tasks_pb2.TaskStatus.ValueType"
) -> None:
    ended = run(QUEUED, event(RUNNING), event(final, seconds=2))
    assert ended.status == final
    assert apply_event(ended, event(late, attempt=2, seconds=9), T0) is None
    assert cancel(ended, at(10)) is None


def test_running_event_after_success_out_of_order_changes_nothing() -> None:
    state = run(QUEUED, event(SUCCEEDED, seconds=5), event(RUNNING, seconds=2))
    assert (state.status, state.attempts, state.finish_time) == (SUCCEEDED, 1, at(5))


@pytest.mark.parametrize(
    "late",
    [
        event(SUCCEEDED, attempt=1, seconds=9, result=tasks_pb2.TaskResult(http_status=200)),
        event(FAILED, attempt=1, seconds=9, error=tasks_pb2.TaskError(code="INTERNAL")),
        retry_report(attempt=1, agent="agent-a", seconds=9),
        event(CANCELLED, attempt=1, seconds=9),
    ],
    ids=["succeeded", "failed", "retrying", "cancelled"],
)
def test_overtaken_attempt_ends_only_its_history_entry(late: queue_pb2.AgentEvent) -> None:
    """A cut-off agent's report, after the task's next attempt started elsewhere."""
    second = run(
        QUEUED,
        event(RUNNING, attempt=1, agent="agent-a", seconds=1),
        event(RUNNING, attempt=2, agent="agent-b", seconds=5),
    )
    state = apply_event(second, late, T0)
    assert state is not None
    assert state == TaskState(
        status=RUNNING,
        attempts=2,
        agent_id="agent-b",
        start_time=at(5),
        history=(
            Attempt(
                1,
                agent_id="agent-a",
                start_time=at(1),
                finish_time=at(9),
                error_code=late.error.code,
                retryable=late.error.retryable,
            ),
            Attempt(2, agent_id="agent-b", start_time=at(5)),
        ),
    )
    assert apply_event(state, late, T0) is None
    done = run(state, event(SUCCEEDED, attempt=2, agent="agent-b", seconds=12))
    assert (done.status, done.attempts, done.agent_id) == (SUCCEEDED, 2, "agent-b")


def test_event_without_an_attempt_number_is_applied_as_the_first() -> None:
    """An agent older than the attempt check: its event is never taken for an overtaken one."""
    state = run(
        QUEUED,
        event(RUNNING, attempt=2, agent="agent-b", seconds=5),
        event(FAILED, attempt=0, agent="agent-a", seconds=9),
    )
    assert (state.status, state.attempts, state.agent_id) == (FAILED, 2, "agent-b")


def test_success_of_an_attempt_that_never_reported_running_ends_the_task() -> None:
    state = run(
        QUEUED,
        event(RUNNING, attempt=1, agent="agent-a"),
        event(SUCCEEDED, attempt=2, agent="agent-b", seconds=3),
    )
    assert (state.status, state.attempts, state.agent_id) == (SUCCEEDED, 2, "agent-b")


def test_failure_for_exhausted_attempts_does_not_count_an_attempt() -> None:
    state = run(QUEUED, event(RUNNING, attempt=3), event(FAILED, attempt=4, agent="agent-z"))
    assert (state.status, state.attempts) == (FAILED, 3)


def test_agent_cancel_ends_the_task_without_counting_an_attempt() -> None:
    state = run(QUEUED, event(CANCELLED, seconds=4))
    assert (state.status, state.attempts, state.finish_time) == (CANCELLED, 0, at(4))


def test_event_without_time_uses_the_time_it_was_received() -> None:
    untimed = queue_pb2.AgentEvent(task_id="t1", status=RUNNING, agent_id="a", attempt=1)
    state = apply_event(QUEUED, untimed, at(7))
    assert state is not None and state.start_time == at(7)


@pytest.mark.parametrize(
    "status", [tasks_pb2.TASK_STATUS_UNSPECIFIED, tasks_pb2.TASK_STATUS_QUEUED]
)
def test_event_that_reports_no_progress_changes_nothing(
    status: "tasks_pb2.TaskStatus.ValueType",
) -> None:
    assert apply_event(QUEUED, event(status), T0) is None


def test_cancel_ends_a_queued_task() -> None:
    state = cancel(QUEUED, at(3))
    assert state == TaskState(status=CANCELLED, finish_time=at(3))
    assert is_final(state.status)


def test_cancel_ends_a_running_task_and_its_attempt() -> None:
    running = run(QUEUED, event(RUNNING, seconds=1))
    state = cancel(running, at(3))
    assert state is not None
    assert (state.status, state.attempts, state.finish_time) == (CANCELLED, 1, at(3))
    assert state.history == (Attempt(1, agent_id="agent-a", start_time=at(1), finish_time=at(3)),)


attempt_numbers = st.integers(min_value=1, max_value=4)
agents = st.sampled_from(["agent-a", "agent-b"])
moments = st.integers(min_value=0, max_value=100)
events = st.one_of(
    st.builds(
        event,
        status=st.sampled_from([RUNNING, SUCCEEDED, FAILED, CANCELLED]),
        attempt=attempt_numbers,
        agent=agents,
        seconds=moments,
    ),
    st.builds(retry_report, attempt=attempt_numbers, agent=agents, seconds=moments),
)


@unhurried
@given(st.lists(events, max_size=8))
def test_events_delivered_twice_end_as_if_delivered_once(
    history: list[queue_pb2.AgentEvent],
) -> None:
    doubled = [each for each in history for _ in range(2)]
    assert run(QUEUED, *doubled) == run(QUEUED, *history)


@unhurried
@given(st.lists(events, max_size=8))
def test_state_only_moves_forward(history: list[queue_pb2.AgentEvent]) -> None:
    state = QUEUED
    for each in history:
        after = apply_event(state, each, T0)
        if after is None:
            continue
        assert not is_final(state.status)
        assert after.attempts >= state.attempts
        state = after


progress = st.one_of(
    st.builds(event, status=st.just(RUNNING), attempt=attempt_numbers, agent=agents),
    st.builds(retry_report, attempt=attempt_numbers, agent=agents, seconds=moments),
)
"""Events that leave a task unfinished: attempts starting, and failing to be retried."""


@unhurried
@given(st.lists(progress, min_size=1, max_size=6), events)
def test_an_overtaken_attempt_moves_nothing_but_its_history(
    history: list[queue_pb2.AgentEvent], late: queue_pb2.AgentEvent
) -> None:
    state = run(QUEUED, *history)
    after = apply_event(state, late, T0)
    if after is not None and late.attempt < state.attempts:
        assert dataclasses.replace(after, history=state.history) == state


@unhurried
@given(st.lists(events, max_size=8))
def test_history_holds_each_attempt_once_and_none_beyond_the_count(
    history: list[queue_pb2.AgentEvent],
) -> None:
    state = run(QUEUED, *history)
    numbers = [attempt.number for attempt in state.history]
    assert numbers == sorted(set(numbers))
    assert all(1 <= number <= state.attempts for number in numbers)
