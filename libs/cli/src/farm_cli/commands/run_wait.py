"""How long `farm task run` waits for RunTask's answer: the task's own time and a margin.

The scheduler answers RunTask once the task ends or its own wait is over (every
attempt's limit plus the queue's wait, or until a little past the task's deadline),
and at the latest a second before the caller's deadline. A scheduler that is
stalled (SIGSTOP, a frozen VM) answers nothing, and the edge's route would hold the
call for 330 s whatever the task: so the command gives RunTask the task's own time
plus a margin as its deadline, and says what that means when it passes.
"""

from datetime import datetime

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import RUN_TIMEOUT
from farm_cli.console import CliError
from farm_core.task_defaults import DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS

# The scheduler's defaults (FARM_SCHEDULER_RUN_QUEUE_WAIT_SECONDS,
# FARM_SCHEDULER_RUN_DEADLINE_GRACE_SECONDS). One that waits longer answers before
# this command's deadline anyway, with the task as it stands.
RUN_QUEUE_WAIT_SECONDS = 60.0
RUN_DEADLINE_GRACE_SECONDS = 5.0
# Past the scheduler's own wait: its answer's way back through the edge, a busy loop.
ANSWER_MARGIN_SECONDS = 15.0
# gRPC's text for a call whose own deadline passed (not a status the farm sent).
CLIENT_DEADLINE = "Deadline Exceeded"


def task_seconds(spec: tasks_pb2.TaskSpec, now: datetime) -> float:
    """How long the scheduler waits for `spec`'s task, with its defaults for unset fields."""
    attempts = spec.max_attempts or DEFAULT_MAX_ATTEMPTS
    timeout_ms = spec.timeout_ms or DEFAULT_TIMEOUT_MS
    seconds = attempts * timeout_ms / 1000 + RUN_QUEUE_WAIT_SECONDS
    if spec.HasField("deadline"):
        until_deadline = (spec.deadline.ToDatetime(tzinfo=now.tzinfo) - now).total_seconds()
        seconds = min(seconds, max(until_deadline + RUN_DEADLINE_GRACE_SECONDS, 0.0))
    return seconds


def run_wait_seconds(spec: tasks_pb2.TaskSpec, now: datetime) -> float:
    """RunTask's deadline for `spec`: the task's own time plus a margin, at most the edge's."""
    return min(task_seconds(spec, now) + ANSWER_MARGIN_SECONDS, RUN_TIMEOUT)


class RunTaskNotAnswered(CliError):
    """RunTask got no answer within the task's own time and the margin (exit 1)."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(
            f"the farm did not answer RunTask within {wait_seconds:.0f} s, the task's own "
            f"time (its attempts' limits and the queue's wait, or its deadline) and "
            f"{ANSWER_MARGIN_SECONDS:.0f} s more: the scheduler may be stalled or overloaded. "
            "The task may have been made: look for it with `farm task list`, or run it "
            "again with the same --idempotency-key"
        )

    @property
    def code_name(self) -> str:
        """As the call's own deadline names it."""
        return "DEADLINE_EXCEEDED"
