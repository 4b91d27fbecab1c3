"""The fleet status the fake AdminService answers `farm status` with."""

import datetime as dt

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.timestamps import to_timestamp

READ = dt.datetime(2026, 12, 1, 9, 30, 0, tzinfo=dt.UTC)


def fleet_status(window_minutes: int) -> admin_pb2.FleetStatus:
    """A farm with a busy agent, a lost one, a waiting queue and an open breaker."""
    return admin_pb2.FleetStatus(
        read_time=to_timestamp(READ),
        agents=[
            admin_pb2.Agent(
                id="agent-1",
                region="eu",
                version="0.1.0",
                concurrency=2,
                busy_places=2,
                browsers=2,
                running_task_ids=["t1"],
                session_ids=["s1"],
                heartbeat_time=to_timestamp(READ - dt.timedelta(seconds=3)),
            ),
            admin_pb2.Agent(
                id="agent-2",
                concurrency=2,
                lost=True,
                heartbeat_time=to_timestamp(READ - dt.timedelta(seconds=20)),
            ),
        ],
        queues=[
            admin_pb2.QueueStatus(
                region="any",
                priority=tasks_pb2.PRIORITY_HIGH,
                pending=4,
                in_flight=1,
                oldest_pending_age_seconds=330,
            )
        ],
        tasks=admin_pb2.TaskCounts(
            window_minutes=window_minutes or 15, queued=4, running=1, succeeded=9, failed=2
        ),
        open_breakers=[
            admin_pb2.BreakerStatus(
                host="down.example",
                state="half_open",
                failures=5,
                open_time=to_timestamp(READ - dt.timedelta(seconds=45)),
            )
        ],
        open_breaker_count=3,
        dead_letters=admin_pb2.DeadLetterCounts(total=7, recent=2),
        open_sessions=1,
    )
