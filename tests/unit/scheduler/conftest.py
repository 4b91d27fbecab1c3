"""What the scheduler's unit tests share: TaskSpec validation with a small attempts cap."""

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.validation import validate_spec

CAP = 10
DEFAULT_TIMEOUT_MS = 30000


def validate(spec: tasks_pb2.TaskSpec, cap: int = CAP) -> tasks_pb2.TaskSpec:
    """`spec` validated as the scheduler does, with maxAttempts capped at `cap`."""
    return validate_spec(spec, max_attempts_cap=cap, default_timeout_ms=DEFAULT_TIMEOUT_MS)
