"""The scheduler's Prometheus metrics: tasks created, retried and finished, dead letters, times.

A task's latency is three histograms: created → first attempt started
(`farm_task_queue_seconds`), latest attempt started → ended (`farm_task_run_seconds`)
and created → ended (`farm_task_end_to_end_seconds`). A task answered from the result
cache counts as created and finished (succeeded) but in no histogram. The fleet's gauges
are in status/gauges.py.
"""

from prometheus_client import Counter, Histogram

from farm.tasks.v1 import tasks_pb2
from farm_core.metric_series import start_at_zero
from farm_core.queue import PRIORITY_TOKENS
from farm_core.task_defaults import DEFAULT_PRIORITY
from farm_scheduler.lifecycle import FINAL_STATUSES, is_final
from farm_scheduler.records import TaskRecord
from farm_scheduler.sessions.unclaimed import Unclaimed
from farm_scheduler.store import TaskChange

_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

tasks_created = Counter("farm_tasks_created_total", "Tasks accepted, by priority.", ["priority"])
tasks_retried = Counter(
    "farm_tasks_retried_total",
    "Failed attempts after which the task went back to the queue for another one.",
)
tasks_finished = Counter(
    "farm_tasks_finished_total", "Tasks that reached a final state, by state.", ["status"]
)
dead_letters = Counter(
    "farm_dead_letters_total", "Tasks given up as FAILED (each one a dead letter)."
)
refused_agent_events = Counter(
    "farm_refused_agent_events_total",
    "Agent events dropped because their subject does not bind the agent id the payload "
    "names (reason agent_differs), or names none while unbound events are refused "
    "(reason unbound), by kind (tasks, sessions).",
    ["kind", "reason"],
)
stale_attempt_events = Counter(
    "farm_stale_attempt_events_total",
    "Ends reported by attempts a later attempt had overtaken (a cut-off agent's): kept in "
    "the attempt history only, by reported status.",
    ["status"],
)
late_final_events = Counter(
    "farm_late_final_events_total",
    "Task-ending agent events JetStream stored more than FARM_SCHEDULER_LATE_EVENT_SECONDS "
    "after the agent built them (copies sent again after a NATS outage), by reported status.",
    ["status"],
)
unclaimed_session_closes = Counter(
    "farm_unclaimed_session_closes_total",
    "Session browsers an agent held with no open session on it claiming them for longer "
    "than FARM_SCHEDULER_SESSION_UNCLAIMED_GRACE_SECONDS, ordered closed, by why: "
    "no_session, closed, other_agent, unplaced. Each replica counts the closes it ordered.",
    ["why"],
)
session_reservations_forgotten = Counter(
    "farm_session_reservations_forgotten_total",
    "Sessions left being placed (no agent yet) longer than "
    "FARM_SCHEDULER_SESSION_PLACE_TIMEOUT_SECONDS and a minute, as a scheduler that died "
    "while placing them leaves them, forgotten by this replica's sweep.",
)
cache_hits = Counter(
    "farm_task_cache_hits_total",
    "Tasks answered from the result cache, without running.",
)
cache_misses = Counter(
    "farm_task_cache_misses_total",
    "Tasks the result cache was asked for and could not answer (they are queued).",
)


def status_label(status: tasks_pb2.TaskStatus.ValueType) -> str:
    """A TaskStatus as a metric label: "succeeded", "failed", ..."""
    return tasks_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_").lower()


# Served from 0 (farm_core.metric_series): a panel's or an alert's rate sees the first event.
start_at_zero(tasks_created, priority=PRIORITY_TOKENS.values())
start_at_zero(tasks_finished, status=sorted(map(status_label, FINAL_STATUSES)))
start_at_zero(refused_agent_events, kind=("tasks", "sessions"), reason=("agent_differs", "unbound"))
start_at_zero(
    stale_attempt_events,
    status=[*sorted(map(status_label, FINAL_STATUSES)), status_label(tasks_pb2.TASK_STATUS_QUEUED)],
)
start_at_zero(late_final_events, status=("succeeded", "failed"))
start_at_zero(unclaimed_session_closes, why=Unclaimed)

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
task_end_to_end_seconds = Histogram(
    "farm_task_end_to_end_seconds",
    "Time from a task's creation to its final state, by priority and final status.",
    ["priority", "status"],
    buckets=_SECONDS_BUCKETS,
)


def _priority(record: TaskRecord) -> str:
    return PRIORITY_TOKENS.get(record.spec.priority, PRIORITY_TOKENS[DEFAULT_PRIORITY])


def record_created(record: TaskRecord, looked_up_cache: bool, count: int = 1) -> None:
    """Counts a newly accepted task (or `count` alike), and the cache's answer if it was asked."""
    tasks_created.labels(priority=_priority(record)).inc(count)
    if record.cached:
        cache_hits.inc(count)
        tasks_finished.labels(status="succeeded").inc(count)
    elif looked_up_cache:
        cache_misses.inc(count)


def record_change(change: TaskChange) -> None:
    """Counts and times a task's change of state."""
    before, after = change.before.state, change.after.state
    if before.attempts == 0 and after.start_time is not None and before.start_time is None:
        waited = (after.start_time - change.after.create_time).total_seconds()
        task_queue_seconds.labels(priority=_priority(change.after)).observe(max(waited, 0.0))
    if _retried(before.status, after.status, before.attempts, after.attempts):
        tasks_retried.inc()
    if is_final(after.status):
        status = status_label(after.status)
        tasks_finished.labels(status=status).inc()
        if after.status == tasks_pb2.TASK_STATUS_FAILED:
            dead_letters.inc()
        if after.start_time is not None and after.finish_time is not None:
            ran = (after.finish_time - after.start_time).total_seconds()
            task_run_seconds.observe(max(ran, 0.0))
        if after.finish_time is not None:
            lived = (after.finish_time - change.after.create_time).total_seconds()
            task_end_to_end_seconds.labels(priority=_priority(change.after), status=status).observe(
                max(lived, 0.0)
            )


def _retried(
    before_status: int, after_status: int, before_attempts: int, after_attempts: int
) -> bool:
    """Whether a change put a task back in the queue after a failed attempt (not a requeue)."""
    queued, failed = tasks_pb2.TASK_STATUS_QUEUED, tasks_pb2.TASK_STATUS_FAILED
    if after_status != queued or before_status == failed:
        return False
    return before_status != queued or after_attempts > before_attempts
