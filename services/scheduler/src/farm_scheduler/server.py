"""The scheduler as farm_core.server runs it: SQL, NATS, the event consumer, the republisher."""

import logging
from collections.abc import Mapping, Sequence

import grpc
import nats.errors
from nats.aio.client import Client

from farm.tasks.v1 import tasks_pb2_grpc
from farm_core.queue import cancel_bucket, connect, ensure_streams
from farm_core.scopes import Scope
from farm_scheduler import metrics
from farm_scheduler.api import TaskApi
from farm_scheduler.events import EventConsumer
from farm_scheduler.publisher import Republisher, TaskPublisher
from farm_scheduler.settings import SchedulerSettings
from farm_scheduler.store import TaskChange, TaskStore
from farm_scheduler.watch import TaskWatch

log = logging.getLogger(__name__)

TASK_SERVICE = "farm.tasks.v1.TaskService"


class SchedulerService:
    """Tasks: TaskService for users; work out to the agents and their events back in."""

    name = "scheduler"
    method_scopes: Mapping[str, str] = {
        f"/{TASK_SERVICE}/CreateTask": Scope.TASKS_WRITE,
        f"/{TASK_SERVICE}/RunTask": Scope.TASKS_WRITE,
        f"/{TASK_SERVICE}/CancelTask": Scope.TASKS_WRITE,
        f"/{TASK_SERVICE}/GetTask": Scope.TASKS_READ,
        f"/{TASK_SERVICE}/ListTasks": Scope.TASKS_READ,
        f"/{TASK_SERVICE}/WatchTask": Scope.TASKS_READ,
    }

    def __init__(self, settings: SchedulerSettings) -> None:
        self._settings = settings
        self._store = TaskStore(settings.resolved_database_url())
        self._watch = TaskWatch(settings.watch_poll_seconds)
        self._consumer = EventConsumer(self._store, self._applied)
        self._nc: Client | None = None
        self._publisher: TaskPublisher | None = None
        self._republisher: Republisher | None = None

    @property
    def store(self) -> TaskStore:
        """The tasks table."""
        return self._store

    @property
    def republisher(self) -> Republisher | None:
        """The loop that publishes tasks accepted while NATS was unreachable (once started)."""
        return self._republisher

    async def start(self) -> None:
        settings = self._settings
        try:
            await self._store.start()
            self._nc = await connect(settings.nats_url, name="farm-scheduler")
            js = self._nc.jetstream()
            await ensure_streams(js)
            self._publisher = TaskPublisher(
                self._nc, await cancel_bucket(js), self._store, settings.publish_timeout_seconds
            )
            self._watch.attach(self._nc)
            await self._consumer.start(js)
            self._republisher = Republisher(
                self._store, self._publisher, settings.republish_interval_seconds
            )
            self._republisher.start()
        except BaseException:
            await self.close()
            raise

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        if self._publisher is None:
            raise RuntimeError("the scheduler registers its servicer only after start()")
        api = TaskApi(self._settings, self._store, self._publisher, self._watch)
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(api, server)
        return [TASK_SERVICE]

    async def drain(self, grace_seconds: float) -> None:
        # RPCs in flight are the gRPC server's to drain; here stop the background work.
        await self._consumer.stop(grace_seconds)
        if self._republisher is not None:
            await self._republisher.stop()

    async def close(self) -> None:
        await self.drain(0)
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except nats.errors.Error as error:
                log.warning("closing the NATS connection uncleanly: %s", error)
                await self._nc.close()
        await self._store.close()

    async def _applied(self, change: TaskChange) -> None:
        metrics.record_change(change)
        await self._watch.announce(change.after.id)
