"""A FleetSnapshot as AdminService.GetFleetStatus returns it."""

import datetime as dt

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.breakers import BreakerEntry, BreakerState
from farm_core.errors import InvalidArgument
from farm_core.timestamps import to_timestamp
from farm_scheduler.status.snapshot import FleetSnapshot

DEFAULT_WINDOW_MINUTES = 15
MAX_WINDOW_MINUTES = 24 * 60
MAX_LISTED_BREAKERS = 100


def checked_window(minutes: int) -> dt.timedelta:
    """The window a request asks for (0: the default); InvalidArgument outside 1 to 1440."""
    if minutes == 0:
        minutes = DEFAULT_WINDOW_MINUTES
    if not 1 <= minutes <= MAX_WINDOW_MINUTES:
        raise InvalidArgument("windowMinutes", f"must be 1 to {MAX_WINDOW_MINUTES}, got {minutes}")
    return dt.timedelta(minutes=minutes)


def not_closed(breakers: list[BreakerEntry]) -> list[BreakerEntry]:
    """The breakers that are open or half-open, most recently opened first."""
    listed = [breaker for breaker in breakers if breaker.state is not BreakerState.CLOSED]
    return sorted(listed, key=lambda breaker: (-breaker.opened_at, breaker.host))


def fleet_status(snapshot: FleetSnapshot, window: dt.timedelta) -> admin_pb2.FleetStatus:
    """The API's view of `snapshot`, its finished tasks counted over `window`."""
    counts = snapshot.tasks
    open_breakers = not_closed(snapshot.breakers)
    return admin_pb2.FleetStatus(
        read_time=to_timestamp(snapshot.read_time),
        agents=snapshot.agents,
        queues=[
            admin_pb2.QueueStatus(
                region=queue.region,
                priority=tasks_pb2.Priority.Value(f"PRIORITY_{queue.priority.name}"),
                pending=queue.pending,
                in_flight=queue.in_flight,
                oldest_pending_age_seconds=round(queue.oldest_pending_age_seconds, 3),
            )
            for queue in snapshot.queues
        ],
        tasks=admin_pb2.TaskCounts(
            window_minutes=int(window.total_seconds() // 60),
            queued=counts.queued,
            running=counts.running,
            succeeded=counts.succeeded,
            failed=counts.failed,
            cancelled=counts.cancelled,
        ),
        open_breakers=[_breaker(entry) for entry in open_breakers[:MAX_LISTED_BREAKERS]],
        open_breaker_count=len(open_breakers),
        dead_letters=admin_pb2.DeadLetterCounts(total=counts.dead_letters, recent=counts.failed),
        open_sessions=snapshot.open_sessions,
    )


def _breaker(entry: BreakerEntry) -> admin_pb2.BreakerStatus:
    status = admin_pb2.BreakerStatus(
        host=entry.host, state=entry.state.value, failures=entry.failures
    )
    if entry.opened_at:
        status.open_time.CopyFrom(to_timestamp(dt.datetime.fromtimestamp(entry.opened_at, dt.UTC)))
    return status
