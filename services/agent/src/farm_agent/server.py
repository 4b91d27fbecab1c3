"""The agent as a farm service: browser pool, task intake and presence, with gRPC health only."""

import logging
from collections.abc import Callable, Mapping, Sequence

import grpc

from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.presence import Presence
from farm_agent.settings import AgentSettings
from farm_agent.work.intake import WorkIntake
from farm_agent.work.uploader import ArtifactUploader, StorageUploader

log = logging.getLogger(__name__)


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
        self._on_drain_notice = on_drain_notice
        self.intake: WorkIntake | None = None
        self.presence: Presence | None = None

    async def start(self) -> None:
        """Starts the browsers, then pulls work and beats the heartbeat."""
        log.info(
            "agent %s starting; egress guard on, pages may also reach: %s",
            self.settings.id,
            self.settings.allow,
        )
        await self.pool.start()
        if self._uploader is None:
            self._uploader = StorageUploader(self.settings)
        runner = BrowserSpecRunner(self.pool, self.settings)
        self.intake = WorkIntake(self.settings, runner, self._uploader)
        try:
            await self.intake.start()
            self.presence = Presence(
                self.settings, self.intake.connection, self.intake, self._on_drain_notice
            )
            await self.presence.start()
        except BaseException:
            await self.close()
            raise

    def register(self, server: grpc.aio.Server) -> Sequence[str]:
        return []

    async def drain(self, grace_seconds: float) -> None:
        """Stops fetching; running tasks finish within the grace or are handed back."""
        if self.presence is not None:
            await self.presence.begin_drain()
        if self.intake is not None:
            await self.intake.drain(grace_seconds)

    async def close(self) -> None:
        """Leaves the agents bucket, closes NATS, the browsers and the storage connection."""
        if self.presence is not None:
            await self.presence.close()
        if self.intake is not None:
            await self.intake.close()
        await self.pool.close()
        if self._uploader is not None:
            await self._uploader.close()
