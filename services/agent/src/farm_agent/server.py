"""The agent as a farm service: browser pool, task intake, sessions, presence; gRPC health only."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc

from farm_agent import VERSION, metrics
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.places import Places
from farm_agent.presence import Presence
from farm_agent.saved.client import StorageSavedState
from farm_agent.sessions.service import AgentSessions
from farm_agent.settings import AgentSettings
from farm_agent.work.intake import WorkIntake
from farm_agent.work.uploader import ArtifactUploader, StorageUploader
from farm_core.nats_start import NatsStart

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workload:
    """What the agent's heartbeat tells: tasks, sessions, places, browsers, whether it drains."""

    intake: WorkIntake
    sessions: AgentSessions
    places: Places
    pool: BrowserPool

    @property
    def running_tasks(self) -> list[str]:
        """Ids of the tasks held now."""
        return self.intake.running_tasks

    @property
    def ending_tasks(self) -> list[str]:
        """Ids of the tasks whose attempt here ended lately."""
        return self.intake.ending_tasks

    @property
    def session_ids(self) -> list[str]:
        """Ids of the sessions open here now."""
        return self.sessions.session_ids

    @property
    def session_endpoint(self) -> str:
        """host:port of the session endpoints."""
        return self.sessions.endpoint

    @property
    def draining(self) -> bool:
        """Whether new work is refused."""
        return self.intake.draining or self.sessions.manager.draining

    @property
    def browsers(self) -> int:
        """Chromium browsers running now."""
        return self.pool.running_browsers

    @property
    def busy_places(self) -> int:
        """Places a running task or an open session holds now."""
        return self.places.total - self.places.free


class AgentService:
    """Runs tasks from NATS in Chromium; serves no RPC of its own besides health.

    A DrainNotice for this agent calls `on_drain_notice`; `python -m farm_agent` has
    it ask `farm_core.server.serve` to stop, which drains and exits as on SIGTERM.
    """

    name = "agent"
    method_scopes: Mapping[str, str] = {}

    def __init__(
        self,
        settings: AgentSettings,
        uploader: ArtifactUploader | None = None,
        *,
        on_drain_notice: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.pool = BrowserPool(settings)
        self._uploader = uploader
        self._saved: StorageSavedState | None = None
        self._on_drain_notice = on_drain_notice
        self.places = Places(settings.concurrency)
        self._watch_metrics()
        self.intake: WorkIntake | None = None
        self.sessions: AgentSessions | None = None
        self.presence: Presence | None = None

    async def start(self) -> None:
        """Starts the browsers, then pulls work and beats the heartbeat."""
        log.info(
            "agent %s starting; egress guard on, pages may also reach: %s",
            self.settings.id,
            self.settings.allow,
        )
        # A start that fails (or is cancelled) closes what it started: browsers,
        # Playwright, the egress listener, NATS, the session endpoints.
        try:
            await self.pool.start()
            if self._uploader is None:
                # A refused credential drains the agent, as a drain notice does.
                self._uploader = StorageUploader(self.settings, on_refused=self._on_drain_notice)
            self._saved = StorageSavedState(self.settings)
            runner = BrowserSpecRunner(self.pool, self.settings)
            self.intake = WorkIntake(
                self.settings, runner, self._uploader, self.places, self._saved
            )
            self.sessions = AgentSessions(
                self.settings, self.pool, self._uploader, self.places, self._saved
            )
            # One deadline for the whole of the agent's start on NATS.
            nats_start = NatsStart("agent", self.settings.nats_start_timeout_seconds)
            await self.intake.start(nats_start)
            await self.sessions.start(self.intake.connection)
            workload = Workload(self.intake, self.sessions, self.places, self.pool)
            self.presence = Presence(
                self.settings, self.intake.connection, workload, self._on_drain_notice
            )
            await self.presence.start(nats_start)
            self.sessions.manager.on_change = self.presence.beat
            self.places.on_change = self.presence.beat_soon
        except BaseException:
            await self.close()
            raise

    def _watch_metrics(self) -> None:
        """Has the resource and work gauges read this agent at each scrape."""
        places = self.places
        metrics.watch_resources(self.settings.home / "agents" / self.settings.id)
        metrics.watch_work(
            self.settings.id,
            self.settings.region,
            VERSION,
            busy_places=lambda: places.total - places.free,
            free_places=lambda: places.free,
            open_sessions=lambda: len(self.sessions.session_ids) if self.sessions else 0,
        )

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        return []

    async def drain(self, grace_seconds: float) -> None:
        """Stops taking work; tasks finish within the grace or are handed back; sessions close."""
        draining = []
        if self.presence is not None:
            draining.append(self._tell_draining(self.presence, grace_seconds))
        if self.intake is not None:
            draining.append(self.intake.drain(grace_seconds))
        if self.sessions is not None:
            draining.append(self.sessions.drain(grace_seconds))
        await asyncio.gather(*draining)

    @staticmethod
    async def _tell_draining(presence: Presence, grace_seconds: float) -> None:
        """Beats that the agent drains, giving up at the grace's end.

        A beat waits for its answer up to FARM_NATS_REQUEST_TIMEOUT_SECONDS, or behind
        one in flight when NATS closed the connection; the drain does not wait on it.
        """
        try:
            async with asyncio.timeout(grace_seconds):
                await presence.begin_drain()
        except TimeoutError:
            log.warning("the heartbeat saying the agent drains got no answer within the grace")

    async def close(self) -> None:
        """Leaves the agents bucket; closes sessions, NATS, the browsers, storage connections.

        Each is closed even when one before it fails (that error is raised after): the
        browsers and Playwright's driver are never left running behind a NATS error.
        """
        parts = (self.presence, self.sessions, self.intake, self.pool, self._uploader, self._saved)
        async with contextlib.AsyncExitStack() as closing:
            # An exit stack runs its callbacks last pushed first.
            for part in reversed(parts):
                if part is not None:
                    closing.push_async_callback(part.close)
