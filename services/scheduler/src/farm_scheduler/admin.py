"""farm.admin.v1.AdminService handlers: the fleet and its status, the tenant's dead letters.

Only operators may manage the fleet: their RPC rules say so, and the identity check
enforces it before a handler runs.
"""

import datetime as dt
from typing import Any

import nats.errors
from nats.js import JetStreamContext

from farm.admin.v1 import admin_pb2, admin_pb2_grpc
from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.errors import Unavailable
from farm_core.identity import current_identity
from farm_core.paging import Cursor, read_page
from farm_core.queue import EVENT_STREAM
from farm_core.timestamps import to_timestamp
from farm_scheduler.api import checked_task_id
from farm_scheduler.changes import ChangeReporter
from farm_scheduler.fleet import Fleet
from farm_scheduler.publisher import TaskPublisher
from farm_scheduler.records import TaskRecord
from farm_scheduler.retention import requeueable_since
from farm_scheduler.status.report import checked_window, fleet_status
from farm_scheduler.status.snapshot import FleetReader
from farm_scheduler.store import TaskStore


def _dead_time(record: TaskRecord) -> dt.datetime:
    dead_time = record.state.dead_time
    if dead_time is None:
        raise ValueError(f"task {record.id} is listed as a dead letter without a dead time")
    return dead_time


def dead_letter(record: TaskRecord) -> admin_pb2.DeadLetter:
    """The API's view of a FAILED task as a dead letter."""
    return admin_pb2.DeadLetter(task=record.to_proto(), dead_time=to_timestamp(_dead_time(record)))


class AdminApi(admin_pb2_grpc.AdminServiceServicer):
    """farm.admin.v1.AdminService: the fleet and its status (operators only), dead letters."""

    def __init__(
        self,
        store: TaskStore,
        publisher: TaskPublisher,
        changes: ChangeReporter,
        fleet: Fleet,
        js: JetStreamContext,
        reader: FleetReader,
        retention_days: int,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._changes = changes
        self._fleet = fleet
        self._js = js
        self._reader = reader
        self._retention_days = retention_days

    async def ListAgents(
        self, request: admin_pb2.ListAgentsRequest, context: Any
    ) -> admin_pb2.ListAgentsResponse:
        return admin_pb2.ListAgentsResponse(agents=await self._fleet.agents())

    async def DrainAgent(
        self, request: admin_pb2.DrainAgentRequest, context: Any
    ) -> admin_pb2.Agent:
        return await self._fleet.drain(request.id)

    async def GetFleetStatus(
        self, request: admin_pb2.GetFleetStatusRequest, context: Any
    ) -> admin_pb2.FleetStatus:
        window = checked_window(request.window_minutes)
        return fleet_status(await self._reader.read(window), window)

    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: Any
    ) -> admin_pb2.ListDeadLettersResponse:
        identity = current_identity()
        # An operator looks after every tenant's dead letters, as `farm status` counts them.
        tenant = None if identity.operator else identity.tenant
        page, next_token = await read_page(
            request,
            lambda limit, after: self._store.dead_letters(tenant, size=limit, after=after),
            lambda record: Cursor(_dead_time(record), record.id),
        )
        return admin_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter(record) for record in page], next_page_token=next_token
        )

    async def RequeueDeadLetter(
        self, request: admin_pb2.RequeueDeadLetterRequest, context: Any
    ) -> tasks_pb2.Task:
        identity, task_id = current_identity(), checked_task_id(request.task_id, "taskId")
        tenant = None if identity.operator else identity.tenant
        # The stream position before the requeue tells the earlier attempts' late
        # events from the new ones.
        try:
            event_sequence = (await self._js.stream_info(EVENT_STREAM)).state.last_seq
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(f"NATS is unreachable; the task cannot be queued: {error}") from error
        now = utcnow()
        ended_since = requeueable_since(self._retention_days, now)
        change = await self._store.requeue(tenant, task_id, now, event_sequence, ended_since)
        await self._changes.report(change)
        # Agents would ack the new queuing unrun while its end mark stands: the
        # republisher publishes it once a withdrawal NATS refused went through. A task
        # that ended again meanwhile (a cancel) is marked instead, and not published.
        if await self._publisher.end_marks.withdraw(task_id):
            await self._publisher.publish(change.after)
        return change.after.to_proto()
