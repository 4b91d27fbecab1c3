"""The agent's presence in the farm: heartbeats in the `farm_agents` bucket, drain orders.

Every `heartbeat_seconds` the agent puts an AgentHeartbeat (id, region, version,
concurrency, places in use, browsers, running tasks, open sessions and where Envoy
reaches them, whether it drains, start and heartbeat time) under its id; the
bucket's time to live drops an agent that stopped beating, and a clean exit
deletes its key. A task that starts or ends beats again soon, at most once per
CHANGE_BEAT_GAP_SECONDS, and a session that opens or closes beats once at once (its
agent answers the order after that beat), so that the fleet's status and the
session placement do not wait for the next regular beat. The
beat's time still says when the agent last beat, so its age tells liveness as
before. A DrainNotice on `control.drain.<id>` makes the agent drain as on SIGTERM.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import nats.errors
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from farm.queue.v1 import queue_pb2
from farm_agent import VERSION
from farm_agent.settings import AgentSettings
from farm_core.cancel import cancel_and_wait
from farm_core.nats_start import NatsStart
from farm_core.periodic import Periodic
from farm_core.queue import drain_subject
from farm_core.shared_buckets import agents_bucket

log = logging.getLogger(__name__)

# Changes that come faster are told together: a busy agent puts at most a few beats a second.
CHANGE_BEAT_GAP_SECONDS = 0.25


class Workload(Protocol):
    """What a heartbeat tells of the agent's work."""

    @property
    def running_tasks(self) -> list[str]:
        """Ids of the tasks held now."""
        ...

    @property
    def ending_tasks(self) -> list[str]:
        """Ids of the tasks whose attempt here ended lately (their end may not be applied)."""
        ...

    @property
    def session_ids(self) -> list[str]:
        """Ids of the sessions open here now."""
        ...

    @property
    def session_endpoint(self) -> str:
        """host:port Envoy reaches the session endpoints at."""
        ...

    @property
    def draining(self) -> bool:
        """Whether new work is refused."""
        ...

    @property
    def browsers(self) -> int:
        """Chromium browsers running now."""
        ...

    @property
    def busy_places(self) -> int:
        """Places a running task or an open session holds now."""
        ...


class Presence:
    """Beats the agent's heartbeat and listens for drain orders addressed to it."""

    def __init__(
        self,
        settings: AgentSettings,
        connection: Client,
        workload: Workload,
        on_drain_notice: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._nc = connection
        self._workload = workload
        self._on_drain_notice = on_drain_notice
        self._start_time = Timestamp()
        self._start_time.GetCurrentTime()
        self._draining = False
        self._drain_ordered = False
        self._agents: KeyValue | None = None
        self._orders: Subscription | None = None
        self._beating = Periodic("agent-heartbeat", self.beat, settings.heartbeat_seconds)
        # Beats are built and put one at a time, so a later state is never overwritten.
        self._putting = asyncio.Lock()
        self._changed = asyncio.Event()
        self._telling_changes: asyncio.Task[None] | None = None

    async def start(self, nats_start: NatsStart | None = None) -> None:
        """Beats the first heartbeat, then keeps beating; listens for drain orders."""
        settings = self._settings
        start = nats_start or NatsStart("agent", settings.nats_start_timeout_seconds)
        js = self._nc.jetstream(timeout=settings.nats_request_timeout_seconds)
        self._agents = await start.set_up(
            self._nc,
            "open the bucket of agent heartbeats",
            lambda: agents_bucket(js, replicas=settings.nats_replicas),
        )
        self._orders = await self._nc.subscribe(
            drain_subject(self._settings.id), cb=self._on_drain_order
        )
        await self.beat()
        self._beating.start()
        self._telling_changes = asyncio.create_task(
            self._beat_on_changes(), name="agent-heartbeat-on-change"
        )

    def beat_soon(self) -> None:
        """Asks for a beat soon: the work changed; changes close together share one beat."""
        self._changed.set()

    async def _beat_on_changes(self) -> None:
        while True:
            await self._changed.wait()
            try:
                await self.beat()
            except Exception:
                log.exception("a heartbeat after a change failed; the next beat tells it")
            await asyncio.sleep(CHANGE_BEAT_GAP_SECONDS)

    async def begin_drain(self) -> None:
        """Says at once that the agent drains."""
        self._draining = True
        await self.beat()

    async def beat(self) -> None:
        """Puts the agent's heartbeat now; a failure is logged and the next beat tries again."""
        async with self._putting:
            await self._put_beat()

    async def _put_beat(self) -> None:
        if self._agents is None:
            return
        # This beat tells every change asked for so far.
        self._changed.clear()
        heartbeat = queue_pb2.AgentHeartbeat(
            agent_id=self._settings.id,
            region=self._settings.region,
            concurrency=self._settings.concurrency,
            running_task_ids=self._workload.running_tasks,
            ending_task_ids=self._workload.ending_tasks,
            session_ids=self._workload.session_ids,
            session_endpoint=self._workload.session_endpoint,
            draining=self._draining or self._workload.draining,
            start_time=self._start_time,
            version=VERSION,
            browsers=self._workload.browsers,
            busy_places=self._workload.busy_places,
        )
        heartbeat.heartbeat_time.GetCurrentTime()
        try:
            await self._agents.put(self._settings.id, heartbeat.SerializeToString())
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("heartbeat failed: %s", error)
            await self._find_bucket_again()

    async def _find_bucket_again(self) -> None:
        """Binds the bucket anew, creating it if a nats-server without its data lost it."""
        try:
            self._agents = await agents_bucket(
                self._nc.jetstream(), replicas=self._settings.nats_replicas
            )
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("the heartbeat bucket is not reachable yet: %s", error)

    async def close(self) -> None:
        """Stops beating and listening, and removes the agent from the bucket."""
        await self._beating.cancel()
        if self._telling_changes is not None:
            await cancel_and_wait(self._telling_changes, "agent-heartbeat-on-change")
        if self._orders is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._orders.unsubscribe()
        if self._agents is not None:
            try:
                await self._agents.delete(self._settings.id)
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("could not remove the heartbeat (it expires): %s", error)

    async def _on_drain_order(self, message: Msg) -> None:
        try:
            agent_id = queue_pb2.DrainNotice.FromString(message.data).agent_id
        except DecodeError:
            agent_id = ""
        if agent_id and agent_id != self._settings.id:
            log.warning("ignoring a drain notice for agent %r on this agent's subject", agent_id)
            return
        if self._drain_ordered:
            return
        self._drain_ordered = True
        log.info("drain notice received: draining and exiting")
        self._on_drain_notice()
