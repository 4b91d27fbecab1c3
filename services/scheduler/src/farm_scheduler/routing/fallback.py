"""Moves tasks that waited too long in their preferred region to `tasks.any.*`, exactly once.

A routed task waits on its preferred region's subject. When it has waited
`wait_seconds` unstarted, or at once when that region has no live agent, the
fallback claims its route MOVED (farm_core.route_claims). Only if that claim holds
is the task set to `any` in SQL, unpublished, and published again on
`tasks.any.<priority>` under a Nats-Msg-Id of its own. An agent of the preferred
region that claimed it STARTED first keeps it; one that meets the old message after
the move acks it unrun, and the fallback deletes that message from the stream
(`queue_messages`). So the task runs from one of the two messages, never both.
"""

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import replace

import nats.errors
from nats.js.kv import KeyValue
from sqlalchemy import and_, or_, select, true, update

from farm.queue.v1 import queue_pb2
from farm_core.db import utcnow
from farm_core.periodic import Periodic
from farm_core.queue import ANY_REGION
from farm_core.route_claims import Claim, take
from farm_scheduler.heartbeats import Heartbeats
from farm_scheduler.publisher import ROUND_ERRORS, TaskPublisher
from farm_scheduler.records import TaskRecord
from farm_scheduler.routing.router import RegionRouter
from farm_scheduler.store import TaskStore
from farm_scheduler.task_rows import read_tasks, tasks

log = logging.getLogger(__name__)

FALLBACK_BATCH = 100
STATUS_QUEUED = "TASK_STATUS_QUEUED"


def live_regions(
    heartbeats: Collection[queue_pb2.AgentHeartbeat], now: dt.datetime, lost_after_seconds: float
) -> set[str]:
    """The regions with an agent that beat within `lost_after_seconds` and is not draining."""
    regions = set()
    for heartbeat in heartbeats:
        beat = heartbeat.heartbeat_time.ToDatetime(dt.UTC)
        fresh = (now - beat).total_seconds() <= lost_after_seconds
        if heartbeat.region and fresh and not heartbeat.draining:
            regions.add(heartbeat.region)
    return regions


class RegionFallback:
    """Every `interval_seconds`, moves the routed tasks whose preferred region did not take them."""

    def __init__(
        self,
        store: TaskStore,
        publisher: TaskPublisher,
        router: RegionRouter,
        heartbeats: Heartbeats,
        claims: KeyValue,
        wait_seconds: float,
        interval_seconds: float,
        agent_lost_seconds: float,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._router = router
        self._heartbeats = heartbeats
        self._claims = claims
        self._wait = dt.timedelta(seconds=wait_seconds)
        self._agent_lost_seconds = agent_lost_seconds
        self._loop = Periodic(
            "scheduler-region-fallback", self._round, interval_seconds, survives=ROUND_ERRORS
        )

    def start(self) -> None:
        """Starts the background loop."""
        self._loop.start()

    async def stop(self) -> None:
        """Stops the loop after the round in progress, if any."""
        await self._loop.stop()

    async def fall_back(self) -> int:
        """One round: looks at the fleet, moves up to FALLBACK_BATCH due tasks; how many moved."""
        now = utcnow()
        if self._router.rules:
            beats = (await self._heartbeats.all()).values()
            self._router.saw_fleet(live_regions(beats, now, self._agent_lost_seconds))
        moved = 0
        for record in await self._due(now - self._wait, self._router.live_regions):
            if self._loop.stopping:
                break
            moved += await self._move(record)
        if moved:
            log.info("moved %d task(s) from their preferred region to any region", moved)
        return moved

    async def _due(
        self, queued_before: dt.datetime, live: frozenset[str] | None
    ) -> list[TaskRecord]:
        """Routed tasks not started since queued: queued before `queued_before`, or regionless."""
        queued_since = tasks.c.requeue_time.is_(None) & (tasks.c.create_time <= queued_before)
        due = or_(queued_since, tasks.c.requeue_time <= queued_before)
        if live is not None:
            due = or_(due, tasks.c.routed_region.not_in(live))
        query = (
            select(tasks)
            .where(
                tasks.c.route_pending == true(),
                tasks.c.status == STATUS_QUEUED,
                tasks.c.attempts == tasks.c.attempt_base,
                due,
            )
            .order_by(tasks.c.create_time, tasks.c.id)
            .limit(FALLBACK_BATCH)
        )
        async with self._store.engine.connect() as connection:
            return await read_tasks(connection, query)

    async def _move(self, record: TaskRecord) -> int:
        """Moves the task if its route claim holds for the move; 1 if it was moved, else 0."""
        try:
            claim = await take(self._claims, record.publish_id, Claim.MOVED)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("could not claim task %s to move it: %s", record.id, error)
            return 0
        if claim is Claim.STARTED:
            # An agent of its region has it: it stays there, for good.
            await self._settle(record, record.routed_region)
            return 0
        moved = await self._settle(record, ANY_REGION)
        if moved is None:
            return 0
        # Left to the republisher if NATS fails now: it is unpublished in SQL.
        await self._publisher.publish(moved)
        # No agent runs the old message now (the claim is MOVED): where none pulls it,
        # it would count as pending work for days.
        await self._publisher.queue_messages.moved(record)
        return 1

    async def _settle(self, record: TaskRecord, region: str) -> TaskRecord | None:
        """Stores the task's final route, unpublished when moved; None if it changed meanwhile."""
        moving = region == ANY_REGION
        values: dict[str, object] = {"route_pending": False, "routed_region": region}
        if moving:
            values.update(published=False, revision=record.revision + 1)
        async with self._store.engine.begin() as connection:
            changed = await connection.execute(
                update(tasks)
                .where(
                    and_(
                        tasks.c.id == record.id,
                        tasks.c.revision == record.revision,
                        tasks.c.status == STATUS_QUEUED,
                    )
                )
                .values(**values)
            )
        if changed.rowcount != 1:
            # Started, cancelled or expired meanwhile; a task still queued is tried again.
            return None
        return replace(
            record,
            routed_region=region,
            route_pending=False,
            published=not moving and record.published,
            revision=record.revision + (1 if moving else 0),
        )

    async def _round(self) -> None:
        while await self.fall_back() == FALLBACK_BATCH and not self._loop.stopping:
            pass
