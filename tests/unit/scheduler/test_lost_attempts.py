"""An attempt whose task was delivered again before it reported an end is recorded as lost."""

from farm.tasks.v1 import tasks_pb2
from farm_core.task_errors import ErrorCode
from farm_scheduler.lifecycle import TaskState
from tests.unit.scheduler.agent_events import at, event, retry_report, run

QUEUED = TaskState(status=tasks_pb2.TASK_STATUS_QUEUED)
RUNNING = tasks_pb2.TASK_STATUS_RUNNING
SUCCEEDED = tasks_pb2.TASK_STATUS_SUCCEEDED
FAILED = tasks_pb2.TASK_STATUS_FAILED
LOST = ErrorCode.AGENT_LOST.value


def test_a_running_attempt_overtaken_by_the_next_is_lost_naming_both_agents() -> None:
    state = run(
        QUEUED,
        event(RUNNING, attempt=1, agent="agent-a", seconds=1),
        event(RUNNING, attempt=2, agent="agent-b", seconds=40),
    )
    first, second = state.history
    assert (first.error_code, first.retryable, first.finish_time) == (LOST, True, at(40))
    assert "'agent-a'" in first.error_message and "'agent-b'" in first.error_message
    assert (second.error_code, second.finish_time) == ("", None)
    assert (state.status, state.error_code) == (RUNNING, "")


def test_the_retry_that_ends_the_task_unstarted_marks_the_running_attempt_lost() -> None:
    exhausted = tasks_pb2.TaskError(code=ErrorCode.ATTEMPTS_EXHAUSTED.value)
    state = run(
        QUEUED,
        event(RUNNING, attempt=1, agent="agent-a", seconds=1),
        event(FAILED, attempt=2, agent="agent-b", seconds=40, error=exhausted),
    )
    [first] = state.history
    assert (first.error_code, first.finish_time) == (LOST, at(40))
    assert (state.status, state.error_code) == (FAILED, ErrorCode.ATTEMPTS_EXHAUSTED.value)


def test_a_lost_attempt_that_reports_after_all_keeps_its_own_end() -> None:
    state = run(
        QUEUED,
        event(RUNNING, attempt=1, agent="agent-a", seconds=1),
        event(RUNNING, attempt=2, agent="agent-b", seconds=40),
        event(SUCCEEDED, attempt=1, agent="agent-a", seconds=50),
    )
    first = state.history[0]
    assert (first.error_code, first.error_message, first.finish_time) == ("", "", at(50))
    assert state.status == RUNNING


def test_an_attempt_that_reported_its_failure_is_not_lost() -> None:
    state = run(
        QUEUED,
        event(RUNNING, attempt=1, agent="agent-a", seconds=1),
        retry_report(attempt=1, agent="agent-a", seconds=2),
        event(RUNNING, attempt=2, agent="agent-b", seconds=8),
    )
    assert [attempt.error_code for attempt in state.history] == ["TIMEOUT", ""]
