"""What a task attempt is handed, grouped by job: the runner, limits, reporting, bookkeeping.

The intake builds one AttemptTools when it starts and gives it to every attempt.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import nats.errors
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.limits.attempt_limits import AttemptLimits
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.settings import AgentSettings
from farm_agent.work.delivery import ExpectRedelivery
from farm_agent.work.endings import RecentEnds
from farm_agent.work.events import EventReporter
from farm_agent.work.holders import Holders
from farm_agent.work.waits import WaitLedger
from farm_core import task_ends
from farm_core.nats_start import NatsStart
from farm_core.shared_buckets import agents_bucket, cancel_bucket, routes_bucket

log = logging.getLogger(__name__)


class SpecRunner(Protocol):
    """Runs a task spec and returns what it captured (BrowserSpecRunner does it in Chromium)."""

    async def run(
        self, spec: tasks_pb2.TaskSpec, profile_state: bytes = b"", tenant: str = ""
    ) -> Capture:
        """Runs a tenant's spec within its timeoutMs, from a profile's state; raises TaskFailure."""
        ...


@dataclass(frozen=True)
class Reporting:
    """Where an attempt's results go: what it captured to storage, events to the scheduler."""

    # Stores a capture's artifacts, comparison and profile; loads profiles.
    keeper: CaptureKeeper
    reporter: EventReporter


@dataclass(frozen=True)
class QueueBookkeeping:
    """Beside the task queue: cancelled tasks, waits, due redeliveries, route claims, the link."""

    cancelled_tasks: KeyValue
    waits: WaitLedger
    expect_redelivery: ExpectRedelivery
    route_claims: KeyValue
    """farm_routes: who took a task routed to a preferred region (farm_core.route_claims)."""
    nats_connected: Callable[[], bool]
    """Whether the agent's NATS connection is up now (not reconnecting)."""
    holders: Holders
    """Who else may still run a redelivered task (the fence against running it twice)."""

    @classmethod
    async def open(
        cls,
        start: NatsStart,
        nc: Client,
        settings: AgentSettings,
        waits: WaitLedger,
        expect_redelivery: ExpectRedelivery,
        attempts_here: Callable[[str], int],
        ended_here: RecentEnds,
    ) -> "QueueBookkeeping":
        """The bookkeeping on the farm's buckets, opened through `start`.

        `attempts_here` counts a task's deliveries running on this agent; `ended_here`
        holds the tasks whose attempt here ended lately.
        """
        js = nc.jetstream(timeout=settings.nats_request_timeout_seconds)
        replicas = settings.nats_replicas
        agents = await start.set_up(
            nc, "open the bucket of agent heartbeats", lambda: agents_bucket(js, replicas=replicas)
        )
        return cls(
            cancelled_tasks=await start.set_up(
                nc, "open the bucket of cancels", lambda: cancel_bucket(js, replicas=replicas)
            ),
            waits=waits,
            expect_redelivery=expect_redelivery,
            route_claims=await start.set_up(
                nc, "open the bucket of route claims", lambda: routes_bucket(js, replicas=replicas)
            ),
            nats_connected=lambda: nc.is_connected,
            holders=Holders(
                nc,
                js,
                agents,
                agent_id=settings.id,
                lost_seconds=settings.holder_lost_seconds,
                look_again_seconds=settings.heartbeat_seconds,
                attempts_here=attempts_here,
                awaits_mark_here=ended_here.awaits_mark,
            ),
        )

    async def end_reason(self, task_id: str) -> str | None:
        """Why the task has ended, if the scheduler marked it so (None if not, or unreadable)."""
        try:
            entry = await self.cancelled_tasks.get(task_id)
        except KeyNotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as error:
            # A cancel that arrives later still stops the task through its cancel subject.
            log.warning("could not check whether task %s has ended: %s", task_id, error)
            return None
        return task_ends.reason_of(entry.value or b"")


@dataclass(frozen=True)
class AttemptTools:
    """What every attempt uses: the runner, the farm's limits, reporting, bookkeeping, settings."""

    runner: SpecRunner
    limits: AttemptLimits
    reporting: Reporting
    bookkeeping: QueueBookkeeping
    settings: AgentSettings
