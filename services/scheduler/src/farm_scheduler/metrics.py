"""The scheduler's Prometheus metrics: tasks created and finished, queue and run times."""

from prometheus_client import Counter, Histogram

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import PRIORITY_TOKENS
from farm_scheduler.lifecycle import is_final
from farm_scheduler.store import TaskChange, TaskRecord

_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

tasks_created = Counter("farm_tasks_created_total", "Tasks accepted, by priority.", ["priority"])
tasks_finished = Counter(
    "farm_tasks_finished_total", "Tasks that reached a final state, by state.", ["status"]
)
task_queue_seconds = Histogram(
    "farm_task_queue_seconds",
    "Time from a task's creation to the start of its first attempt, by priority.",
    ["priority"],
    buckets=_SECONDS_BUCKETS,
)
task_run_seconds = Histogram(
    "farm_task_run_seconds",
    "Time from the start of a task's latest attempt to its end.",
    buckets=_SECONDS_BUCKETS,
)


def _priority(record: TaskRecord) -> str:
    return PRIORITY_TOKENS.get(record.spec.priority, "normal")


def record_created(record: TaskRecord) -> None:
    """Counts a newly accepted task."""
    tasks_created.labels(priority=_priority(record)).inc()


def record_change(change: TaskChange) -> None:
    """Counts and times a task's change of state."""
    before, after = change.before.state, change.after.state
    if before.status == tasks_pb2.TASK_STATUS_QUEUED and after.start_time is not None:
        waited = (after.start_time - change.after.create_time).total_seconds()
        task_queue_seconds.labels(priority=_priority(change.after)).observe(max(waited, 0.0))
    if is_final(after.status):
        status = tasks_pb2.TaskStatus.Name(after.status).removeprefix("TASK_STATUS_").lower()
        tasks_finished.labels(status=status).inc()
        if after.start_time is not None and after.finish_time is not None:
            ran = (after.finish_time - after.start_time).total_seconds()
            task_run_seconds.observe(max(ran, 0.0))
