"""The scheduler as farm_core.server runs it: SQL, NATS, the event consumer, background loops."""

import datetime as dt
import logging
from collections.abc import Mapping, Sequence

import grpc
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from farm.admin.v1 import admin_pb2_grpc
from farm.sessions.v1 import sessions_pb2_grpc
from farm.tasks.v1 import tasks_pb2_grpc
from farm_core.egress.address_policy import AddressPolicy
from farm_core.egress.resolution import farm_policy
from farm_core.grants import GrantSigner
from farm_core.key_revocations import KeyRevocationWatch
from farm_core.key_streams import KeyStreams
from farm_core.nats_start import NatsStart
from farm_core.periodic import Periodic
from farm_core.queue import ensure_streams
from farm_core.scopes import method_scopes
from farm_core.sessions import sessions_bucket
from farm_core.shared_buckets import agents_bucket, cancel_bucket, routes_bucket
from farm_scheduler.admin import AdminApi
from farm_scheduler.api import TaskApi
from farm_scheduler.cache_eviction import CacheEviction
from farm_scheduler.callbacks.attempts import RetryPolicy
from farm_scheduler.callbacks.deliverer import CallbackDeliverer
from farm_scheduler.callbacks.secrets import WebhookSecrets
from farm_scheduler.callbacks.sender import CallbackSender
from farm_scheduler.changes import ChangeReporter
from farm_scheduler.events import EventConsumer
from farm_scheduler.fleet import Fleet
from farm_scheduler.grants import Grants
from farm_scheduler.heartbeats import Heartbeats
from farm_scheduler.publisher import Republisher, TaskPublisher
from farm_scheduler.retention import TaskRetention, cache_reach
from farm_scheduler.routing.fallback import RegionFallback
from farm_scheduler.routing.router import RegionRouter
from farm_scheduler.routing.rules import parse_rules
from farm_scheduler.sessions.api import SessionApi
from farm_scheduler.sessions.closer import SessionCloser
from farm_scheduler.sessions.events import SessionEventConsumer
from farm_scheduler.sessions.orders import AgentOrders
from farm_scheduler.sessions.reported import ReportedCloses
from farm_scheduler.sessions.routes import SessionRoutes
from farm_scheduler.sessions.store import SessionStore
from farm_scheduler.settings import SchedulerSettings
from farm_scheduler.status.gauges import FleetGauges
from farm_scheduler.status.snapshot import FleetReader
from farm_scheduler.store import TaskChange, TaskStore
from farm_scheduler.sweeper import DeadlineSweeper
from farm_scheduler.watch import TaskWatch

log = logging.getLogger(__name__)

TASK_SERVICE = "farm.tasks.v1.TaskService"
ADMIN_SERVICE = "farm.admin.v1.AdminService"
SESSION_SERVICE = "farm.sessions.v1.SessionService"


class SchedulerService:
    """Tasks: TaskService and AdminService; work out to the agents and their events back in."""

    name = "scheduler"
    method_scopes: Mapping[str, str] = method_scopes(TASK_SERVICE, ADMIN_SERVICE, SESSION_SERVICE)

    def __init__(self, settings: SchedulerSettings) -> None:
        self._settings = settings
        self._router = RegionRouter(parse_rules(settings.region_routes))
        self._store = TaskStore(
            settings.resolved_database_url(),
            dt.timedelta(seconds=settings.idempotency_window_seconds),
            route=self._router.route,
            migration_lock_timeout_seconds=settings.migration_lock_timeout_seconds,
        )
        self._store.cache_reach = cache_reach(settings.task_retention_days)
        self._watch = TaskWatch(settings.watch_poll_seconds)
        # A WatchTask stream outlives the check of the key that opened it: it ends with the key.
        self._key_streams = KeyStreams()
        self._key_revocations = KeyRevocationWatch(
            settings.nats(),
            self._key_streams.revoked,
            settings.nats_replicas,
            on_secrets=self._key_streams.secrets_changed,
        )
        self._grants = Grants(
            GrantSigner(settings.resolved_grant_key()),
            settings.grant_grace_seconds,
            trees=settings.grant_trees,
        )
        self._consumer = EventConsumer(
            self._store,
            self._applied,
            self._grants,
            settings.event_ack_wait_seconds,
            self._mark_end,
            settings.accept_unbound_events,
            settings.late_event_seconds,
        )
        self._nc: Client | None = None
        self._publisher: TaskPublisher | None = None
        self._changes: ChangeReporter | None = None
        self._fleet: Fleet | None = None
        self._republisher: Republisher | None = None
        self._sweeper: DeadlineSweeper | None = None
        self._retention: TaskRetention | None = None
        self._fallback: RegionFallback | None = None
        self._sessions = SessionStore(self._store.engine)
        self._cache_eviction = CacheEviction(self._store.engine)
        self._session_closer: SessionCloser | None = None
        self._session_routes: SessionRoutes | None = None
        self._session_events: SessionEventConsumer | None = None
        self._session_sweeper: Periodic | None = None
        self._agent_orders: AgentOrders | None = None
        self._fleet_reader: FleetReader | None = None
        self._fleet_gauges: FleetGauges | None = None
        self._callback_policy = AddressPolicy()
        self._callbacks: CallbackDeliverer | None = None

    @property
    def store(self) -> TaskStore:
        """The tasks and their attempts."""
        return self._store

    @property
    def publisher(self) -> TaskPublisher | None:
        """What hands tasks to the agents over JetStream (once started)."""
        return self._publisher

    @property
    def republisher(self) -> Republisher | None:
        """The loop that publishes what NATS could not take at once (once started)."""
        return self._republisher

    @property
    def sweeper(self) -> DeadlineSweeper | None:
        """The loop that fails tasks still queued at their deadline (once started)."""
        return self._sweeper

    @property
    def retention(self) -> TaskRetention | None:
        """The retention sweep, once started."""
        return self._retention

    @property
    def fallback(self) -> RegionFallback | None:
        """The loop that moves routed tasks their preferred region did not take (once started)."""
        return self._fallback

    async def start(self) -> None:
        settings = self._settings
        try:
            await self._store.start()
            # One deadline for the whole of the scheduler's start on NATS.
            start = NatsStart("scheduler", settings.nats_start_timeout_seconds)
            nc = self._nc = await start.connect(settings.nats(), name="farm-scheduler")
            js = nc.jetstream(timeout=settings.nats_request_timeout_seconds)
            replicas = settings.nats_replicas
            # The buckets agents open come first: an agent that finds the streams finds them.
            cancels = await start.set_up(
                nc, "open the bucket of ended tasks", lambda: cancel_bucket(js, replicas=replicas)
            )
            agents = await start.set_up(
                nc,
                "open the bucket of agent heartbeats",
                lambda: agents_bucket(js, replicas=replicas),
            )
            routes = await start.set_up(
                nc, "open the bucket of route claims", lambda: routes_bucket(js, replicas=replicas)
            )
            await start.set_up(
                nc,
                "create or update the streams FARM_TASKS, FARM_EVENTS, FARM_DEAD and FARM_AUDIT",
                lambda: ensure_streams(js, replicas=replicas),
            )
            self._publisher = TaskPublisher(
                self._nc,
                cancels,
                self._store,
                settings.publish_timeout_seconds,
                self._grants,
            )
            cached_keys = self._store.cached_keys
            reload_seconds = settings.cache_keys_reload_seconds
            await cached_keys.start(self._nc, self._store.engine, reload_seconds)
            await self._cache_eviction.start(self._nc)
            self._changes = ChangeReporter(self._watch, self._publisher)
            heartbeats = Heartbeats(js, agents)
            self._fleet = Fleet(
                self._nc,
                heartbeats,
                settings.publish_timeout_seconds,
                settings.session_agent_lost_seconds,
            )
            self._watch.attach(self._nc)
            self._key_revocations.start()
            await start.set_up(
                nc, "bind the event consumer of FARM_EVENTS", lambda: self._consumer.start(js)
            )
            self._republisher = Republisher(
                self._store,
                self._publisher,
                settings.republish_interval_seconds,
                settings.republish_grace_seconds,
            )
            self._republisher.start()
            self._sweeper = DeadlineSweeper(
                self._store,
                self._publisher,
                self._changes.report,
                settings.deadline_sweep_interval_seconds,
            )
            self._sweeper.start()
            self._retention = TaskRetention(
                self._store.engine,
                nc,
                settings.task_retention_days,
                settings.retention_batch_size,
                settings.retention_artifacts_timeout_seconds,
            )
            self._retention.start()
            self._fallback = RegionFallback(
                self._store,
                self._publisher,
                self._router,
                heartbeats,
                routes,
                settings.region_fallback_seconds,
                settings.region_fallback_interval_seconds,
                settings.session_agent_lost_seconds,
            )
            self._fallback.start()
            await self._start_sessions(js, heartbeats, start)
            self._fleet_reader = FleetReader(
                self._fleet, js, self._store.engine, self._sessions, settings.nats().shown()
            )
            self._fleet_gauges = FleetGauges(
                self._fleet_reader, settings.fleet_gauges_interval_seconds
            )
            self._fleet_gauges.start()
            await self._start_callbacks()
        except BaseException:
            await self.close()
            raise

    async def _start_callbacks(self) -> None:
        """The callback deliverer, behind the address policy resolved once at start."""
        settings = self._settings
        self._callback_policy = await farm_policy(settings.callback_allow, settings.farm_services())
        self._callbacks = CallbackDeliverer(
            self._store.engine,
            WebhookSecrets(self._store.engine),
            CallbackSender(self._callback_policy, settings.callback_timeout_seconds),
            RetryPolicy(
                settings.callback_retry_first_seconds,
                settings.callback_retry_max_seconds,
                settings.callback_retry_window_seconds,
            ),
            concurrency=settings.callback_concurrency,
            poll_seconds=settings.callback_poll_seconds,
            timeout_seconds=settings.callback_timeout_seconds,
        )
        self._callbacks.start()

    async def _start_sessions(
        self, js: JetStreamContext, heartbeats: Heartbeats, start: NatsStart
    ) -> None:
        """The sessions' parts: orders to agents, their closes, the sweep for lost agents."""
        settings = self._settings
        nc = self._nc
        if nc is None:
            raise RuntimeError("sessions start after NATS")
        self._agent_orders = AgentOrders(
            nc, settings.session_open_timeout_seconds, settings.session_close_timeout_seconds
        )
        self._session_routes = SessionRoutes(
            await start.set_up(
                nc,
                "open the bucket of session routes",
                lambda: sessions_bucket(js, settings.nats_replicas),
            )
        )
        self._session_closer = SessionCloser(
            self._sessions,
            self._agent_orders,
            heartbeats,
            self._session_routes,
            settings.session_agent_lost_seconds,
            settings.session_unclaimed_grace_seconds,
            settings.session_place_timeout_seconds,
            ReportedCloses(js),
        )
        self._session_events = SessionEventConsumer(
            self._session_closer, settings.event_ack_wait_seconds, settings.accept_unbound_events
        )
        session_events = self._session_events
        await start.set_up(
            nc,
            "bind the session event consumer of FARM_EVENTS",
            lambda: session_events.start(js),
        )
        self._session_sweeper = Periodic(
            "session-sweep", self._session_closer.sweep, settings.session_sweep_interval_seconds
        )
        self._session_sweeper.start()

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        if self._nc is None or self._publisher is None or self._changes is None:
            raise RuntimeError("the scheduler registers its servicers only after start()")
        if self._fleet is None:
            raise RuntimeError("the scheduler registers its servicers only after start()")
        tasks = TaskApi(
            self._settings,
            self._store,
            self._publisher,
            self._watch,
            self._changes,
            self._callback_policy,
            self._key_streams,
        )
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(tasks, server)
        if self._fleet_reader is None:
            raise RuntimeError("the scheduler registers its servicers only after start()")
        admin = AdminApi(
            self._store,
            self._publisher,
            self._changes,
            self._fleet,
            self._nc.jetstream(),
            self._fleet_reader,
            self._settings.task_retention_days,
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        if (
            self._agent_orders is None
            or self._session_closer is None
            or self._session_routes is None
        ):
            raise RuntimeError("the scheduler registers its servicers only after start()")
        sessions = SessionApi(
            self._settings,
            self._sessions,
            self._agent_orders,
            self._session_closer,
            self._session_routes,
            self._settings.resolved_live_token_secret(),
            self._grants,
        )
        sessions_pb2_grpc.add_SessionServiceServicer_to_server(sessions, server)
        return [TASK_SERVICE, ADMIN_SERVICE, SESSION_SERVICE]

    async def drain(self, grace_seconds: float) -> None:
        # RPCs in flight are the gRPC server's to drain, but RunTask's and WatchTask's
        # waits end now, saying so (TaskWatch.stop); then stop the background work.
        self._watch.stop()
        await self._consumer.stop(grace_seconds)
        if self._session_events is not None:
            await self._session_events.stop(grace_seconds)
        loops = (
            self._republisher,
            self._sweeper,
            self._retention,
            self._fallback,
            self._session_sweeper,
        )
        for loop in (*loops, self._fleet_gauges):
            if loop is not None:
                await loop.stop()
        if self._session_closer is not None:
            await self._session_closer.stop(grace_seconds)
        await self._store.cached_keys.stop()
        callbacks, self._callbacks = self._callbacks, None
        if callbacks is not None:
            await callbacks.stop(grace_seconds)

    async def close(self) -> None:
        await self.drain(0)
        await self._key_revocations.close()
        await self._key_streams.close()
        # Answered until now: storage deletes nothing while no replica answers.
        await self._cache_eviction.stop()
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except nats.errors.Error as error:
                log.warning("closing the NATS connection uncleanly: %s", error)
                await self._nc.close()
        await self._store.close()

    async def _mark_end(self, task_id: str, reason: str) -> None:
        if self._publisher is not None:
            await self._publisher.end_marks.mark(task_id, reason)

    async def _applied(self, change: TaskChange) -> None:
        if self._changes is not None:
            await self._changes.report(change)
