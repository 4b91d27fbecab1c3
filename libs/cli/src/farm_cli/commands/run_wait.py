"""How long `farm task run` waits for RunTask's answer: the task's own time and a margin.

The scheduler answers RunTask once the task ends or its own wait is over (every
attempt's limit plus the queue's wait, or until a little past the task's deadline),
and at the latest a second before the caller's deadline. A scheduler that is
stalled (SIGSTOP, a frozen VM) answers nothing, and the edge's route would hold the
call for 330 s whatever the task: so the command gives RunTask the task's own time
plus a margin as its deadline, and says what that means when it passes. The margin
is FARM_RUN_ANSWER_MARGIN_SECONDS when set (docs/cli.md).
"""

import math
import os
from collections.abc import Mapping
from datetime import datetime

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import RUN_TIMEOUT
from farm_cli.console import CliError, UsageError
from farm_core.task_defaults import DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS

# The scheduler's defaults (FARM_SCHEDULER_RUN_QUEUE_WAIT_SECONDS,
# FARM_SCHEDULER_RUN_DEADLINE_GRACE_SECONDS). One that waits longer answers before
# this command's deadline anyway, with the task as it stands.
RUN_QUEUE_WAIT_SECONDS = 60.0
RUN_DEADLINE_GRACE_SECONDS = 5.0
# Past the scheduler's own wait: its answer's way back through the edge, a busy loop.
ANSWER_MARGIN_SECONDS = 15.0
ANSWER_MARGIN_VARIABLE = "FARM_RUN_ANSWER_MARGIN_SECONDS"
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


def answer_margin_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The margin past the task's own time: FARM_RUN_ANSWER_MARGIN_SECONDS, else 15 s.

    A value that is no number of seconds ≥ 0 is a usage error (exit 2) naming it.
    """
    text = (os.environ if environ is None else environ).get(ANSWER_MARGIN_VARIABLE, "").strip()
    if not text:
        return ANSWER_MARGIN_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise UsageError(f"{ANSWER_MARGIN_VARIABLE}={text!r}: not a number of seconds >= 0")
    return seconds


def run_wait_seconds(
    spec: tasks_pb2.TaskSpec, now: datetime, margin_seconds: float | None = None
) -> float:
    """RunTask's deadline for `spec`: the task's own time plus a margin, at most the edge's.

    The margin is `margin_seconds`, by default answer_margin_seconds()'s.
    """
    margin = answer_margin_seconds() if margin_seconds is None else margin_seconds
    return min(task_seconds(spec, now) + margin, RUN_TIMEOUT)


class RunTaskNotAnswered(CliError):
    """RunTask got no answer within the task's own time and the margin (exit 1)."""

    def __init__(self, wait_seconds: float, margin_seconds: float) -> None:
        super().__init__(
            f"the farm did not answer RunTask within {wait_seconds:.0f} s, the task's own "
            f"time (its attempts' limits and the queue's wait, or its deadline) and "
            f"{margin_seconds:g} s more: the scheduler may be stalled or overloaded. "
            "The task may have been made: look for it with `farm task list`, or run it "
            "again with the same --idempotency-key"
        )

    @property
    def code_name(self) -> str:
        """As the call's own deadline names it."""
        return "DEADLINE_EXCEEDED"
